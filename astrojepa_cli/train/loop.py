"""The pretraining loop. Read it top to bottom: build, (resume), train, log, checkpoint, finish.

Randomness is a function of the step: the epoch order is drawn from a
generator seeded by (seed, epoch), and views, masks and any dropout from
generators seeded by (seed, step). A resumed run therefore replays exactly
the batches and augmentations an uninterrupted run would have drawn, and the
RNG state to restore is just the step counter.

A checkpoint is saved at every epoch end, every ``--save-every`` steps, and at
least every ``ASTROJEPA_CHECKPOINT_SECONDS`` (default 600) of training, so a run
killed before its first epoch ends still resumes. A crash marks the run
``failed`` with its error.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import os
import signal
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist

import registry
from astrojepa_cli import paths, runs
from astrojepa_cli.atomic import write_bytes
from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.train.monitors import collapse_monitors
from astrojepa_cli.train import budget, distributed
from astrojepa_cli.train.checkpoint import load_checkpoint, save_checkpoint
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.progress import TrainingProgress
from astrojepa_cli.train.schedules import cosine_ramp, warmup_cosine
from registry.objective import Objective
from registry.views import centre_view

MONITOR_IMAGES = 512
COLLAPSE_RANK = 2.0
CHECKPOINT_SECONDS = float(os.environ.get("ASTROJEPA_CHECKPOINT_SECONDS", "600"))
# Flags that may change when a run resumes: they lengthen or shorten training, or how often it saves.
RESUMABLE_CHANGES = ("epochs", "max_steps", "save_every")


@dataclass
class PretrainResult:
    run_id: str
    run_dir: str
    status: str
    steps: int
    images_per_second: float
    final_loss: float | None
    checkpoint_step: int | None = None


def create_plugin(kind: str, name: str, **options):
    """Build a plugin, passing only the options its factory accepts."""
    plugin = registry.get(kind, name)
    parameters = inspect.signature(plugin.factory).parameters
    accepted = {k: v for k, v in options.items() if k in parameters and v is not None}
    return plugin.factory(**accepted)


def build_objective(config: PretrainConfig, channels: int, img_size: int) -> Objective:
    """The encoder and objective plugins named by ``config``, sized for the data."""
    encoder = create_plugin("encoder", config.arch, img_size=img_size, patch_size=config.patch_size, in_chans=channels)
    encoder.input_size = img_size
    patch = getattr(encoder, "patch_size", None) or 1
    local_size = config.local_size or max(patch * 2, (img_size // 2) // patch * patch)
    masker = create_plugin("masker", config.masker) if config.masker else None
    try:
        objective = create_plugin(
            "loss", config.loss, encoder=encoder, lam=config.lam, global_views=config.global_views,
            local_views=config.local_views, global_size=config.global_size or img_size, local_size=local_size,
            global_scale=config.global_scale, local_scale=config.local_scale, augment=config.augment(),
            proj_dim=config.proj_dim, proj_hidden=config.proj_hidden, proj_depth=config.proj_depth,
            temperature=config.temperature, masker=masker, ema=config.ema, img_size=img_size,
            pred_loss=config.pred_loss,
        )
    except (ValueError, TypeError) as exc:
        raise UserError(f"cannot build loss '{config.loss}' with encoder '{config.arch}': {exc}") from None
    if not isinstance(objective, Objective):
        trainable = [n for n in registry.names("loss")
                     if "encoder" in inspect.signature(registry.get("loss", n).factory).parameters]
        raise UserError(f"loss '{config.loss}' is a regulariser, not a training objective; use one of {', '.join(trainable)}")
    return objective


def to_training_layout(objective: Objective, device: torch.device) -> Objective:
    """Move ``objective`` to ``device``, with a convolutional encoder in channels-last layout on CPU and CUDA.

    oneDNN (CPU) and cuDNN (CUDA tensor cores) run convolutions fastest on NHWC
    tensors; a ViT is matmuls after its patch embedding and keeps the default layout.
    """
    objective = objective.to(device)
    encoder = objective.encoder
    convolutional = any(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
    if convolutional and not getattr(encoder, "is_vit", False) and device.type in ("cpu", "cuda"):
        objective = objective.to(memory_format=torch.channels_last)
    return objective


def build_optimizer(objective: Objective, config: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``objective``, fused into one kernel per step on CPU and CUDA."""
    return torch.optim.AdamW(_param_groups(objective, config.weight_decay), lr=config.lr,
                             fused=device.type in ("cpu", "cuda"))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only; none on biases, norms and tokens."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay, "decayed": True},
            {"params": no_decay, "weight_decay": 0.0, "decayed": False}]


def autocast_for(device: torch.device, precision: str):
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


def epoch_order(data: loader.DeviceImages, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's shuffle (window-keeping when the store is read in chunks), seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(step_seed(seed, 10_000_000 + epoch))
    return data.shuffled_order(generator).to(data.device)


@torch.no_grad()
def _embed(encoder: torch.nn.Module, data: loader.DeviceImages, img_size: int,
           indices: torch.Tensor | None = None) -> torch.Tensor:
    was_training = encoder.training
    encoder.eval()
    indices = torch.arange(len(data), device=data.device) if indices is None else indices.to(data.device)
    embeddings = torch.cat([encoder(centre_view(data.batch(chunk), img_size)).float() for chunk in indices.split(256)])
    encoder.train(was_training)
    return embeddings


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop metric rows after ``last_step`` (the resumed run recomputes them) and a row torn by a kill."""
    if not path.exists():
        return
    kept = [row for row in runs.read_metrics(path) if row["step"] <= last_step]
    write_bytes(path, "".join(json.dumps(row) + "\n" for row in kept).encode())


def _global_means(sums: dict[str, torch.Tensor], count: int, placement: distributed.Placement) -> dict[str, float]:
    """Mean of each logged term over the steps since the last log and over every rank (one sync)."""
    names = sorted(sums)
    stacked = torch.stack([sums[n] for n in names]) / count
    if placement.distributed:
        dist.all_reduce(stacked)
        stacked /= placement.world_size
    return dict(zip(names, stacked.tolist()))


def pretrain(config: PretrainConfig, root: Path | None = None, resume: str | None = None,
             progress: bool = True, resume_changes: dict | None = None) -> PretrainResult:
    """Train ``config`` (or continue run ``resume``, with ``resume_changes`` of
    :data:`RESUMABLE_CHANGES` applied) and return the run's result. A crash marks the run failed."""
    placement = distributed.setup(config.device)
    try:
        if resume:
            resume = _resumable(resume, root, resume_changes or {}, placement)
        else:
            check_patch_geometry(config, root)
        return _pretrain(config, root, resume, progress, placement)
    except BaseException as exc:
        if placement.is_main:
            runs.fail_unfinished(root, f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        distributed.teardown()


def resume_flags(flags: dict) -> dict:
    """The config ``flags`` given with ``--resume`` that the resumed run applies; any other is an error
    (``--device`` is always free: it says where to train, not what)."""
    refused = sorted(set(flags) - set(RESUMABLE_CHANGES) - {"device"})
    if refused:
        raise UserError(f"--resume continues the run's recorded config; it cannot change "
                        f"{', '.join('--' + k.replace('_', '-') for k in refused)} "
                        f"(it may change {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES)})")
    return {k: v for k, v in flags.items() if k in RESUMABLE_CHANGES}


def check_patch_geometry(config: PretrainConfig, root: Path | None) -> None:
    """A ViT's patch size must tile the image and every view, checked before a run folder exists."""
    if "patch_size" not in registry.get("encoder", config.arch).defaults():
        return
    if config.patch_size < 1:
        raise UserError(f"--patch-size must be at least 1, got {config.patch_size}")
    img_size = config.img_size or store.read_info(paths.existing_store(config.data, root)).image_shape[0]
    sizes = {"--img-size": img_size, "--global-size": config.global_size, "--local-size": config.local_size}
    for flag, size in sizes.items():
        if size is not None and (size < config.patch_size or size % config.patch_size):
            raise UserError(f"--patch-size {config.patch_size} does not divide {flag} {size}; "
                            f"choose a patch size that divides it")


def _resumable(ref: str, root: Path | None, changes: dict, placement: distributed.Placement) -> str:
    """The folder of run ``ref`` if it can resume, after recording ``changes`` in its config."""
    run = runs.open_run(ref, root, latest_of=runs.STATUSES)
    if run.status == "running":
        raise UserError(f"run {run.id} is still training (process {run.manifest.get('pid')}); "
                        "stop it before resuming")
    config = {**run.manifest["config"], **changes}
    steps_per_epoch = run.manifest["dataset"]["n_train_images"] // config["batch_size"]
    total_steps = min(config["epochs"] * steps_per_epoch, config["max_steps"] or math.inf)
    if run.status == "completed" and total_steps <= (run.manifest.get("steps") or 0):
        raise UserError(f"run {run.id} already completed its {run.manifest.get('steps')} steps; nothing to resume "
                        "(raise --epochs or --max-steps to train it further)")
    if changes and placement.is_main:
        run.update(config=config)
    if placement.distributed:
        dist.barrier()
    return str(run.dir)


def _plan_budget(config: PretrainConfig, objective: Objective, data: loader.DeviceImages,
                 held_out: loader.DeviceImages | None, probe: OnlineProbe, steps_per_epoch: int, img_size: int,
                 placement: distributed.Placement) -> budget.BudgetPlan:
    """Calibrate on a throw-away copy of the model and choose the steps that fit ``config.budget``.

    Every rank calibrates at once (collectives inside the objective stay matched);
    rank 0's plan is the one all of them follow.
    """
    device = placement.device
    trial = copy.deepcopy(objective)
    trial_optimizer = build_optimizer(trial, config, device)
    local_rows = torch.arange(config.batch_size // placement.world_size, device=device) % len(data)

    def train_step(step: int) -> None:
        generator = torch.Generator(device=device).manual_seed(step_seed(config.seed, step))
        with autocast_for(device, config.precision):
            loss = trial(data.batch(local_rows), step, generator)["loss"]
        loss.backward()
        trial_optimizer.step()
        trial_optimizer.zero_grad(set_to_none=True)
        trial.on_step_end(step, steps_per_epoch)

    def epoch_end() -> None:
        collapse_monitors(_embed(trial.encoder, data, img_size, torch.arange(min(MONITOR_IMAGES, len(data)))))
        if held_out is not None:
            probe.accuracy(_embed(trial.encoder, held_out, img_size), torch.as_tensor(held_out.labels, device=device))
        state = {**{f"model.{k}": v for k, v in trial.state_dict().items()},
                 **{f"optimizer.{i}.{k}": v for i, moments in enumerate(trial_optimizer.state.values())
                    for k, v in moments.items() if torch.is_tensor(v)}}
        with tempfile.TemporaryDirectory() as scratch:
            runs.save_tensors(Path(scratch) / "state.safetensors", state)

    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    plan = budget.plan_steps(budget.parse_duration(config.budget), steps_per_epoch, train_step, epoch_end, synchronize)
    if placement.distributed:
        shared = [plan]
        dist.broadcast_object_list(shared, src=0)
        plan = shared[0]
    return plan


def _pretrain(config: PretrainConfig, root: Path | None, resume: str | None, progress: bool,
              placement: distributed.Placement) -> PretrainResult:
    device = placement.device
    # --- what to train on -------------------------------------------------
    if resume:
        run = runs.open_run(resume, root)
        config = PretrainConfig.from_json(run.manifest["config"])
        store_path = Path(run.manifest["dataset"]["store"])
    else:
        config.validate()
        config = config.with_method_defaults()
        store_path = paths.existing_store(config.data, root)
    info = store.read_info(store_path)
    if resume and info.sha256 != run.manifest["dataset"]["sha256"]:
        raise UserError(f"store {store_path} changed since run {run.id} started; cannot resume on different data")
    rows = loader.split_rows(store_path, config.train_splits)
    if len(rows) == 0:
        raise UserError(f"dataset '{info.name}' has no images in split(s) {', '.join(config.train_splits)}")
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

    # --- model, optimiser, data on the device ------------------------------
    torch.manual_seed(config.seed)
    objective = to_training_layout(build_objective(config, info.channels, img_size), device)
    objective.shard = (placement.rank, placement.world_size)
    optimizer = build_optimizer(objective, config, device)
    data = loader.DeviceImages(store_path, device, rows, stretch=config.stretch)
    labels = torch.as_tensor(data.labels, device=device)
    labelled = bool(len(info.classes)) and bool((data.labels >= 0).any())
    probe = OnlineProbe(objective.encoder.embed_dim, max(1, len(info.classes))).to(device)
    held_out = None
    if labelled:
        held_rows = loader.split_rows(store_path, ("test",))
        held_rows = held_rows[store.load(store_path, with_images=False).labels[held_rows] >= 0]
        held_out = loader.DeviceImages(store_path, device, held_rows, stretch=config.stretch) if len(held_rows) else None
    modules = {"objective": objective, "online_probe": probe}
    optimizers = {"objective": optimizer, "online_probe": probe.optimizer}
    budget_plan = None
    if config.budget and not resume:
        budget_plan = _plan_budget(config, objective, data, held_out, probe, steps_per_epoch, img_size, placement)
        total_steps = min(budget_plan.steps, config.max_steps or budget_plan.steps)
        config = replace(config, max_steps=total_steps, epochs=math.ceil(total_steps / steps_per_epoch))

    # --- the run folder (rank 0 writes; other ranks learn its path) ----------
    start_step = 0
    if resume:
        start_step = load_checkpoint(run.dir, modules, optimizers, device)["step"]
        if placement.is_main:
            _trim_metrics(run.metrics_path, start_step)
            run.manifest["epochs"] = [e for e in run.manifest["epochs"] if e["step"] <= start_step]
            run.manifest["snapshots"] = [s for s in run.manifest.get("snapshots", []) if s["step"] <= start_step]
            run.manifest.pop("failure", None)
            run.update(status="running", resumed_at_step=start_step, **runs.owner())
    elif placement.is_main:
        run = runs.create_run(root, f"{config.loss}-{config.arch}", {
            "config": config.to_json(),
            "dataset": {"name": info.name, "store": info.path, "sha256": info.sha256, "n_images": info.n_images,
                        "n_train_images": int(len(rows)), "image_shape": info.image_shape, "channels": info.channels},
            "environment": runs.environment(str(device)),
            "world_size": placement.world_size,
            **({"budget_plan": {**budget_plan.to_json(), "machine": budget.machine()}} if budget_plan else {}),
        })
    if placement.distributed and not resume:
        shared = [str(run.dir) if placement.is_main else None]
        dist.broadcast_object_list(shared, src=0)
        run = run if placement.is_main else runs.open_run(Path(shared[0]))
    model = torch.nn.parallel.DistributedDataParallel(objective) if placement.distributed else objective
    if config.compile:
        model = torch.compile(model)

    # --- train --------------------------------------------------------------
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    term_sums: dict[str, torch.Tensor] = {}
    steps_since_log = 0
    status, last_loss, failure = "completed", None, None
    images_seen, train_seconds = 0, 0.0
    done = start_step
    checkpoint_step = start_step if resume else None
    last_save = time.monotonic()
    order = None
    objective.train()
    with StopRequest() as stop, TrainingProgress(progress and placement.is_main, total_steps, start_step) as bar:
        tick = time.perf_counter()
        for step in range(start_step, total_steps):
            epoch, position = divmod(step, steps_per_epoch)
            if order is None or position == 0:
                order = epoch_order(data, config.seed, epoch)
            batch_rows = order[position * global_batch : (position + 1) * global_batch][placement.rank :: placement.world_size]
            lr = warmup_cosine(step, total_steps, warmup_steps, config.lr, config.lr / 1000)
            weight_decay = cosine_ramp(step, total_steps, config.weight_decay, config.weight_decay_end)
            for group in optimizer.param_groups:
                group["lr"] = lr
                if group["decayed"]:
                    group["weight_decay"] = weight_decay
            torch.manual_seed(step_seed(config.seed, step))
            generator = torch.Generator(device=device).manual_seed(step_seed(config.seed, step))
            with autocast_for(device, config.precision):
                terms = model(data.batch(batch_rows), step, generator)
            embedding = terms.pop("embedding", None)
            loss = terms["loss"]
            # Under DDP every rank skips together, or the others would wait in backward for it.
            if config.nan_policy == "skip" and distributed.broadcast_flag(not torch.isfinite(loss), placement):
                optimizer.zero_grad(set_to_none=True)
                continue
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            objective.on_step_end(step, total_steps)
            if labelled and embedding is not None:
                probe.learn(embedding, labels[batch_rows])
            for name, value in terms.items():
                term_sums[name] = term_sums.get(name, 0) + value.detach().float()
            steps_since_log += 1
            images_seen += global_batch
            done = step + 1
            bar.advance(done)
            end_of_epoch = done % steps_per_epoch == 0
            # Under DDP the ranks agree on stopping at log boundaries only, to keep collectives off other steps.
            stop_now = (not placement.distributed or done % config.log_every == 0) and distributed.broadcast_flag(
                stop.requested, placement)
            save_due = (not placement.distributed or done % config.log_every == 0) and distributed.broadcast_flag(
                time.monotonic() - last_save >= CHECKPOINT_SECONDS, placement)
            save_now = end_of_epoch or stop_now or save_due or done == total_steps or (
                config.save_every and done % config.save_every == 0)
            if done % config.log_every == 0 or save_now:
                means = _global_means(term_sums, steps_since_log, placement)
                if not math.isfinite(means["loss"]):
                    status, failure = "failed", {"step": done, "terms": means}
                    break
                elapsed = time.perf_counter() - tick
                train_seconds += elapsed
                rate = steps_since_log * global_batch / max(elapsed, 1e-9)
                last_loss = means["loss"]
                if placement.is_main:
                    row = {"step": done, "epoch": epoch, **means, "lr": lr, "weight_decay": weight_decay,
                           "images_per_second": rate}
                    with open(run.metrics_path, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    bar.update(done, epoch, means, rate)
                term_sums, steps_since_log = {}, 0
            if end_of_epoch:
                # Each rank embeds its share of the monitor images, so SIGReg (which all-reduces under
                # DDP) counts every image once; only rank 0 records the monitors.
                monitor_rows = torch.arange(min(MONITOR_IMAGES, len(data)))[placement.rank :: placement.world_size]
                summary = {"epoch": epoch, "step": done, "loss": last_loss, "wall_time_s": round(train_seconds, 3),
                           **collapse_monitors(_embed(objective.encoder, data, img_size, monitor_rows))}
                if held_out is not None:
                    summary["online_probe_accuracy"] = probe.accuracy(
                        _embed(objective.encoder, held_out, img_size), torch.as_tensor(held_out.labels, device=device))
                if placement.is_main:
                    run.manifest["epochs"].append(summary)
                if placement.is_main and summary["effective_rank"] < COLLAPSE_RANK:
                    bar.warn(f"epoch {epoch}: effective rank {summary['effective_rank']:.2f} < {COLLAPSE_RANK}; "
                             "the embeddings may be collapsing")
            if placement.is_main and save_now:
                save_checkpoint(run.dir, modules, optimizers, done, {"epoch": epoch})
                runs.save_encoder(run, objective.encoder, config.arch, step=done)
                if config.keep_encoders:
                    path = runs.save_encoder(run, objective.encoder, config.arch, runs.snapshot_path(run, done), done)
                    run.manifest.setdefault("snapshots", []).append(
                        {"step": done, "loss": last_loss, "file": str(path.relative_to(run.dir))})
                run.save()
            if save_now:
                checkpoint_step, last_save = done, time.monotonic()
            if stop_now:
                status = "interrupted"
                break
            if done % config.log_every == 0 or save_now:
                tick = time.perf_counter()
    rate = images_seen / train_seconds if train_seconds > 0 else 0.0
    if placement.is_main:
        run.update(status=status, steps=done, total_steps=total_steps, finished=runs.now(),
                   result={"final_loss": last_loss, "images_per_second": rate, "steps": done},
                   **({"failure": failure} if failure else {}))
    return PretrainResult(run.id, str(run.dir), status, done, rate, last_loss, checkpoint_step)
