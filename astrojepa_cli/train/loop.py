"""The pretraining loop. Read it top to bottom: what to train on, build, (resume), train, log,
checkpoint, finish.

Randomness is a function of the step (:mod:`.step`), so a resumed run replays
exactly the batches and augmentations an uninterrupted run would have drawn, and
the RNG state to restore is just the step counter.

A checkpoint is saved at every epoch end, every ``--save-every`` steps, and at
least every ``ASTROJEPA_CHECKPOINT_SECONDS`` (default 600) of training, so a run
killed before its first epoch ends still resumes. A crash marks the run
``failed`` with its error.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist

import registry
from astrojepa_cli import paths, runs
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.train import budget, distributed
from astrojepa_cli.train.budget_plan import plan_precision_and_budget
from astrojepa_cli.train.build import build_optimizer, to_training_layout
from astrojepa_cli.train.checkpoint import save_run_checkpoint
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.epoch_end import epoch_monitors, epoch_warnings
from astrojepa_cli.train.metrics import MetricsWindow, append_row, log_interval
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.progress import TrainingProgress
from astrojepa_cli.train.short_run import slow_step_warning
from astrojepa_cli.train.resume import restore, resumable
from astrojepa_cli.train.step import epoch_order, forward, rank_batch, set_schedule, step_generator, step_seed, update
from astrojepa_cli.train.stop import StopRequest
from astrojepa_cli.train.tracking import open_trackers
from astrojepa_cli.train.training_data import load_training_data, say_left_out, training_rows
from registry.objective import build_objective

CHECKPOINT_SECONDS = float(os.environ.get("ASTROJEPA_CHECKPOINT_SECONDS", "600"))


@dataclass
class PretrainResult:
    run_id: str
    run_dir: str
    status: str
    steps: int
    images_per_second: float
    final_loss: float | None
    checkpoint_step: int | None = None


def pretrain(config: PretrainConfig, root: Path | None = None, resume: str | None = None,
             progress: bool = True, resume_changes: dict | None = None) -> PretrainResult:
    """Train ``config`` (or continue run ``resume``, with ``resume_changes`` of
    :data:`.resume.RESUMABLE_CHANGES` applied) and return the run's result. A crash marks the run failed."""
    placement = distributed.setup(config.device)
    try:
        if resume:
            resume = resumable(resume, root, resume_changes or {}, placement)
        else:
            check_patch_geometry(config, root)
        return _pretrain(config, root, resume, progress, placement)
    except BaseException as exc:
        if placement.is_main:
            runs.fail_unfinished(root, f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        distributed.teardown()


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


def _pretrain(config: PretrainConfig, root: Path | None, resume: str | None, progress: bool,
              placement: distributed.Placement) -> PretrainResult:
    device = placement.device
    # --- what to train on ---------------------------------------------------
    run = runs.open_run(resume, root) if resume else None
    if run:
        config = PretrainConfig.from_json(run.manifest["config"])
        store_path = Path(run.manifest["dataset"]["store"])
    else:
        config.validate()
        config = config.with_method_defaults()
        store_path = paths.existing_store(config.data, root)
    info = store.read_info(store_path)
    if run and info.sha256 != run.manifest["dataset"]["sha256"]:
        raise UserError(f"store {store_path} changed since run {run.id} started; cannot resume on different data")
    splits, rows, left_out = training_rows(store_path, info, config.train_splits)
    config = replace(config, train_splits=splits)
    img_size = config.img_size or info.image_shape[0]
    global_batch = config.batch_size
    if global_batch % placement.world_size:
        raise UserError(f"--batch-size {global_batch} must be divisible by the {placement.world_size} processes")
    steps_per_epoch = len(rows) // global_batch
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {global_batch} exceeds the {len(rows)} training images")
    total_steps = min(config.epochs * steps_per_epoch, config.max_steps or math.inf)

    # --- model, optimiser, data on the device --------------------------------
    torch.manual_seed(config.seed)
    objective = to_training_layout(build_objective(config, info.channels, img_size), device)
    objective.shard = (placement.rank, placement.world_size)
    say_left_out(left_out)
    optimizer = build_optimizer(objective, config, device)
    data = load_training_data(store_path, info, rows, config.stretch, device)
    probe = OnlineProbe(objective.encoder.embed_dim, max(1, len(info.classes))).to(device)
    modules = {"objective": objective, "online_probe": probe}
    optimizers = {"objective": optimizer, "online_probe": probe.optimizer}
    # A resumed run keeps its recorded precision (and step count); runs recorded before the choice re-choose.
    precision, budget_plan = plan_precision_and_budget(
        replace(config, budget=None) if resume else config, objective, data, probe, steps_per_epoch, img_size,
        placement, root, run.manifest.get("precision") if run else None)
    if budget_plan:
        total_steps = min(budget_plan.steps, config.max_steps or budget_plan.steps)
        config = replace(config, max_steps=total_steps, epochs=math.ceil(total_steps / steps_per_epoch))

    # --- the run folder (rank 0 writes; other ranks learn its path) -----------
    if run:
        start_step = restore(run, modules, optimizers, placement)
    else:
        start_step = 0
        run = _new_run(root, config, info, len(rows), budget_plan, placement)
        if placement.is_main:
            run.update(precision=precision.to_json())
    model = torch.nn.parallel.DistributedDataParallel(objective) if placement.distributed else objective
    if config.compile:
        model = torch.compile(model)

    # --- train ----------------------------------------------------------------
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    log_every = log_interval(config.log_every, total_steps)
    status, last_loss, failure = "completed", None, None
    done = start_step
    checkpoint_step = start_step if resume else None
    last_save = time.monotonic()
    order = None
    objective.train()
    trackers = open_trackers(config.log, run, config.to_json(), start_step, placement.is_main)
    with (trackers, StopRequest() as stop,
          TrainingProgress(progress and placement.is_main, total_steps, start_step,
                           slow_step=None if budget_plan else partial(slow_step_warning, config=config)) as bar):
        window = MetricsWindow(global_batch)
        for step in range(start_step, total_steps):
            epoch, position = divmod(step, steps_per_epoch)
            if order is None or position == 0:
                order = epoch_order(data.images, config.seed, epoch)
            batch_rows = rank_batch(order, position, global_batch, placement)
            lr, weight_decay = set_schedule(optimizer, config, step, total_steps, warmup_steps)
            torch.manual_seed(step_seed(config.seed, step))
            terms = forward(model, data.images.batch(batch_rows), step, step_generator(config.seed, step, device),
                            precision.used)
            embedding = terms.pop("embedding", None)
            # Under DDP every rank skips together, or the others would wait in backward for it.
            if config.nan_policy == "skip" and distributed.broadcast_flag(not torch.isfinite(terms["loss"]), placement):
                optimizer.zero_grad(set_to_none=True)
                continue
            update(terms["loss"], objective, optimizer, step, total_steps)
            if data.labelled and embedding is not None:
                probe.learn(embedding, data.probe_labels[batch_rows])
            window.add(terms)
            done = step + 1
            bar.advance(done)

            at_log_step = done % log_every == 0
            end_of_epoch = done % steps_per_epoch == 0
            stop_now = _agreed(stop.requested, at_log_step, placement)
            save_due = _agreed(time.monotonic() - last_save >= CHECKPOINT_SECONDS, at_log_step, placement)
            save_now = (end_of_epoch or stop_now or save_due or done == total_steps
                        or bool(config.save_every and done % config.save_every == 0))
            if at_log_step or save_now:
                means = window.means(placement)
                if not math.isfinite(means["loss"]):
                    status, failure = "failed", {"step": done, "terms": means}
                    break
                rate, last_loss = window.close(), means["loss"]
                if placement.is_main:
                    row = {"step": done, "epoch": epoch, **means, "lr": lr, "weight_decay": weight_decay,
                           "images_per_second": rate}
                    append_row(run.metrics_path, row)
                    trackers.log_row(row)
                    bar.update(done, epoch, means, window.images_per_second)
            if end_of_epoch:
                summary = {"epoch": epoch, "step": done, "loss": last_loss, "wall_time_s": round(window.train_seconds, 3),
                           **epoch_monitors(objective, data, probe, img_size, placement.rank,
                                            placement.world_size, config.seed, global_batch)}
                if placement.is_main:
                    run.manifest["epochs"].append(summary)
                    trackers.log_epoch(summary)
                    for warning in epoch_warnings(run.manifest["epochs"], config):
                        bar.warn(warning)
            if save_now:
                if placement.is_main:
                    save_run_checkpoint(run, modules, optimizers if config.keep_state or done < total_steps else {},
                                        objective.encoder, config.arch, done, epoch,
                                        last_loss, config.keep_encoders)
                checkpoint_step, last_save = done, time.monotonic()
            if stop_now:
                status = "interrupted"
                break
            if at_log_step or save_now:
                window.restart_clock()
        trackers.close(status)

    # --- finish ---------------------------------------------------------------
    rate = window.images_per_second
    if placement.is_main:
        run.update(status=status, steps=done, total_steps=total_steps, finished=runs.now(),
                   result={"final_loss": last_loss, "images_per_second": rate, "steps": done},
                   **({"failure": failure} if failure else {}))
    return PretrainResult(run.id, str(run.dir), status, done, rate, last_loss, checkpoint_step)


def _agreed(flag: bool, at_log_step: bool, placement: distributed.Placement) -> bool:
    """``flag`` raised on any rank. Under DDP the ranks agree at log steps only, to keep collectives
    off other steps."""
    return (not placement.distributed or at_log_step) and distributed.broadcast_flag(flag, placement)


def _new_run(root: Path | None, config: PretrainConfig, info: store.StoreInfo, n_train_images: int,
             budget_plan: budget.BudgetPlan | None, placement: distributed.Placement) -> runs.Run:
    """The new run's folder: rank 0 creates it, and the other ranks open it."""
    run = None
    if placement.is_main:
        run = runs.create_run(root, f"{config.loss}-{config.arch}", {
            "config": config.to_json(),
            "dataset": {"name": info.name, "store": info.path, "sha256": info.sha256, "n_images": info.n_images,
                        "n_train_images": n_train_images, "image_shape": info.image_shape, "channels": info.channels},
            "environment": runs.environment(str(placement.device)),
            "world_size": placement.world_size,
            **({"budget_plan": {**budget_plan.to_json(), "machine": budget.machine()}} if budget_plan else {}),
        })
    if placement.distributed:
        shared = [str(run.dir) if placement.is_main else None]
        dist.broadcast_object_list(shared, src=0)
        run = run if placement.is_main else runs.open_run(Path(shared[0]))
    return run
