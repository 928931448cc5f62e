"""The pretraining loop. Read it top to bottom: build, (resume), train, checkpoint, finish.

Randomness is a function of the step: the epoch order is drawn from a
generator seeded by (seed, epoch), and views, masks and any dropout from
generators seeded by (seed, step). A resumed run therefore replays exactly
the batches and augmentations an uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import registry
from astrojepa_cli import paths, runs
from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.monitors import collapse_monitors
from astrojepa_cli.train import distributed
from astrojepa_cli.train.checkpoint import load_checkpoint, save_checkpoint
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.schedules import warmup_cosine
from registry.objective import Objective

MONITOR_IMAGES = 512
COLLAPSE_RANK = 2.0


@dataclass
class PretrainResult:
    run_id: str
    run_dir: str
    status: str
    steps: int
    images_per_second: float
    final_loss: float | None


def create_plugin(kind: str, name: str, **options):
    """Build a plugin, passing only the options its factory accepts."""
    plugin = registry.get(kind, name)
    parameters = inspect.signature(plugin.factory).parameters
    accepted = {k: v for k, v in options.items() if k in parameters and v is not None}
    return plugin.factory(**accepted)


def build_objective(config: PretrainConfig, channels: int, img_size: int) -> Objective:
    encoder = create_plugin("encoder", config.arch, img_size=img_size, patch_size=config.patch_size, in_chans=channels)
    patch = getattr(encoder, "patch_size", None) or 1
    local_size = config.local_size or max(patch * 2, (img_size // 2) // patch * patch)
    masker = create_plugin("masker", config.masker) if config.masker else None
    objective = create_plugin(
        "loss", config.loss, encoder=encoder, lam=config.lam, global_views=config.global_views,
        local_views=config.local_views, global_size=config.global_size or img_size, local_size=local_size,
        masker=masker, ema=config.ema, img_size=img_size,
    )
    if not isinstance(objective, Objective):
        trainable = [n for n in registry.names("loss")
                     if "encoder" in inspect.signature(registry.get("loss", n).factory).parameters]
        raise UserError(f"loss '{config.loss}' is a regulariser, not a training objective; use one of {', '.join(trainable)}")
    return objective


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only; none on biases, norms and tokens."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> "StopRequest":
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


def epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(step_seed(seed, 10_000_000 + epoch))
    return torch.randperm(n, generator=generator).to(device)


@torch.no_grad()
def _monitor(objective: Objective, data: loader.DeviceImages, img_size: int) -> dict[str, float]:
    from registry.views import centre_view

    encoder = objective.encoder
    was_training = encoder.training
    encoder.eval()
    count = min(MONITOR_IMAGES, len(data))
    indices = torch.arange(count, device=data.pixels.device)
    embeddings = torch.cat([encoder(centre_view(data.batch(chunk), img_size)) for chunk in indices.split(128)])
    encoder.train(was_training)
    return collapse_monitors(embeddings)


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop metric rows after ``last_step`` (they are recomputed by the resumed run)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


def pretrain(config: PretrainConfig, root: Path | None = None, resume: str | None = None,
             progress: bool = True) -> PretrainResult:
    """Train ``config`` (or continue run ``resume``) and return the run's result."""
    placement = distributed.setup(config.device)
    try:
        return _pretrain(config, root, resume, progress, placement)
    finally:
        distributed.teardown()


def _pretrain(config: PretrainConfig, root: Path | None, resume: str | None, progress: bool,
              placement: distributed.Placement) -> PretrainResult:
    device = placement.device
    if resume:
        run = runs.open_run(resume, root)
        config = PretrainConfig(**{**run.manifest["config"], "train_splits": tuple(run.manifest["config"]["train_splits"])})
        store_path = Path(run.manifest["dataset"]["store"])
    else:
        config.validate()
        store_path = paths.existing_store(config.data, root)
    info = store.read_info(store_path)
    if resume and info.sha256 != run.manifest["dataset"]["sha256"]:
        raise UserError(f"store {store_path} changed since run {run.id} started; cannot resume on different data")
    rows = loader.split_rows(store_path, config.train_splits)
    if len(rows) == 0:
        raise UserError(f"dataset '{config.data}' has no images in split(s) {', '.join(config.train_splits)}")
    img_size = config.img_size or info.image_shape[0]
    global_batch = config.batch_size
    if global_batch % placement.world_size:
        raise UserError(f"--batch-size {global_batch} must be divisible by the {placement.world_size} processes")
    steps_per_epoch = len(rows) // global_batch
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {global_batch} exceeds the {len(rows)} training images")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    torch.manual_seed(config.seed)
    objective = build_objective(config, info.channels, img_size).to(device)
    optimizer = torch.optim.AdamW(_param_groups(objective, config.weight_decay), lr=config.lr,
                                  fused=device.type == "cuda")
    data = loader.DeviceImages(store_path, device, rows)

    start_step = 0
    if resume:
        start_step = load_checkpoint(run.dir, objective, optimizer, device)["step"]
        if placement.is_main:
            _trim_metrics(run.metrics_path, start_step)
            run.update(status="running", resumed_at_step=start_step)
    elif placement.is_main:
        run = runs.create_run(root, f"{config.loss}-{config.arch}", {
            "config": config.to_json(),
            "dataset": {"name": info.name, "store": info.path, "sha256": info.sha256, "n_images": info.n_images,
                        "n_train_images": int(len(rows)), "image_shape": info.image_shape, "channels": info.channels},
            "environment": runs.environment(str(device)),
            "world_size": placement.world_size,
        })
    else:
        run = None
    if placement.distributed:
        run_dir = [str(run.dir) if run else None]
        torch.distributed.broadcast_object_list(run_dir, src=0)
        run = run or runs.open_run(Path(run_dir[0]))
        objective.shard = (placement.rank, placement.world_size)
    model = torch.nn.parallel.DistributedDataParallel(objective) if placement.distributed else objective
    if config.compile:
        model = torch.compile(model)

    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    local_batch = global_batch // placement.world_size
    term_sums: dict[str, torch.Tensor] = {}
    terms_counted = 0
    status, last_loss, failure = "completed", None, None
    images_seen, train_seconds = 0, 0.0
    bar = _Progress(progress and placement.is_main, total_steps, start_step)
    done = start_step
    objective.train()
    with StopRequest() as stop, bar:
        tick = time.perf_counter()
        order = None
        for step in range(start_step, total_steps):
            epoch, position = divmod(step, steps_per_epoch)
            if order is None or position == 0:
                order = epoch_order(len(rows), config.seed, epoch, device)
            batch_rows = order[position * global_batch : (position + 1) * global_batch]
            images = data.batch(batch_rows[placement.rank :: placement.world_size])
            lr = warmup_cosine(step, total_steps, warmup_steps, config.lr, config.lr / 1000)
            for group in optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(step_seed(config.seed, step))
            generator = torch.Generator(device=device).manual_seed(step_seed(config.seed, step))
            with _autocast(device, config.precision):
                terms = model(images, step, generator)
            loss = terms["loss"]
            if config.nan_policy == "skip" and not torch.isfinite(loss):
                optimizer.zero_grad(set_to_none=True)
                continue
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            objective.on_step_end(step, total_steps)
            for name, value in terms.items():
                term_sums[name] = term_sums.get(name, 0) + value.detach().float()
            terms_counted += 1
            images_seen += global_batch
            done = step + 1
            boundary_log = done % config.log_every == 0 or done == total_steps
            boundary_epoch = done % steps_per_epoch == 0
            boundary_save = boundary_epoch or (config.save_every and done % config.save_every == 0)
            stop_now = distributed.broadcast_flag(stop.requested, placement)
            if boundary_log or boundary_save or stop_now:
                means = {k: float(v) / terms_counted for k, v in term_sums.items()}
                if not math.isfinite(means["loss"]):
                    status, failure = "failed", {"step": done, "terms": means}
                    break
                elapsed = time.perf_counter() - tick
                train_seconds += elapsed
                rate = terms_counted * global_batch / max(elapsed, 1e-9)
                last_loss = means["loss"]
                if placement.is_main:
                    row = {"step": done, "epoch": epoch, **means, "lr": lr, "images_per_second": rate}
                    with open(run.metrics_path, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    bar.update(done, epoch, means, rate)
                term_sums, terms_counted = {}, 0
                tick = time.perf_counter()
            if boundary_epoch and placement.is_main:
                summary = {"epoch": epoch, "step": done, "loss": last_loss, "wall_time_s": round(train_seconds, 3),
                           **_monitor(objective, data, img_size)}
                run.manifest["epochs"].append(summary)
                bar.note_collapse(summary)
            if (boundary_save or stop_now) and placement.is_main:
                save_checkpoint(run.dir, objective, optimizer, done, {"epoch": epoch})
                runs.save_encoder(run, objective.encoder, config.arch)
                run.save()
            if stop_now:
                status = "interrupted"
                break
    steps_done = done
    rate = images_seen / train_seconds if train_seconds > 0 else 0.0
    if placement.is_main:
        if status == "completed":
            save_checkpoint(run.dir, objective, optimizer, steps_done, {"epoch": steps_done // steps_per_epoch})
            runs.save_encoder(run, objective.encoder, config.arch)
        run.update(status=status, steps=steps_done, total_steps=total_steps, finished=runs._now(),
                   result={"final_loss": last_loss, "images_per_second": rate, "steps": steps_done},
                   **({"failure": failure} if failure else {}))
    return PretrainResult(run.id, str(run.dir), status, steps_done, rate, last_loss)


class _Progress:
    """A rich progress bar on stderr showing epoch, step, loss terms, images/s and ETA."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from astrojepa_cli.console import stderr

        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]pretrain[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"), TextColumn("{task.fields[rate]} img/s"), TimeRemainingColumn(),
            console=stderr, disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("pretrain", total=total, completed=start, epoch=0, terms="", rate="-")

    def __enter__(self) -> "_Progress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, epoch: int, means: dict[str, float], rate: float) -> None:
        terms = " ".join(f"{k} {v:.4g}" for k, v in means.items())
        self.progress.update(self.task, completed=step, epoch=epoch, terms=terms, rate=f"{rate:.0f}")

    def note_collapse(self, summary: dict) -> None:
        from astrojepa_cli.console import stderr

        rank = summary["effective_rank"]
        if rank < COLLAPSE_RANK:
            stderr.print(f"[yellow]warning:[/] epoch {summary['epoch']}: effective rank {rank:.2f} < {COLLAPSE_RANK}; "
                         "the embeddings may be collapsing")
