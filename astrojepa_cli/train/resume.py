"""Resuming a run: which flags may change, whether the run can continue, and restoring its state.

A resumed run continues from its last checkpoint with its recorded config; the
metric rows, epoch summaries and snapshots after that checkpoint are dropped and
recomputed, so the finished run reads as if it had never stopped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.distributed as dist

from astrojepa_cli import runs
from astrojepa_cli.atomic import write_bytes
from astrojepa_cli.errors import UserError
from astrojepa_cli.console import stderr
from astrojepa_cli.train.checkpoint import checkpoint_step, has_optimizer_state, load_checkpoint
from astrojepa_cli.train.distributed import Placement
from astrojepa_cli.train.tracking import check_tracker_names

# Flags that may change when a run resumes: they lengthen or shorten training, say how often it saves,
# or where it is watched (the dashboards of --log; "--log none" stops them).
RESUMABLE_CHANGES = ("epochs", "max_steps", "save_every", "log", "mlflow_uri", "keep_state")


def resume_flags(flags: dict) -> dict:
    """The config ``flags`` given with ``--resume`` that the resumed run applies; any other is an error
    (``--device`` is always free: it says where to train, not what)."""
    refused = sorted(set(flags) - set(RESUMABLE_CHANGES) - {"device"})
    if refused:
        raise UserError(f"--resume continues the run's recorded config; it cannot change "
                        f"{', '.join('--' + k.replace('_', '-') for k in refused)} "
                        f"(it may change {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES)})")
    check_tracker_names(tuple(flags.get("log", ())))
    return {k: v for k, v in flags.items() if k in RESUMABLE_CHANGES}


def resumable(ref: str, root: Path | None, changes: dict, placement: Placement) -> str:
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
    start_step = checkpoint_step(run.dir)
    if not has_optimizer_state(run.dir):
        raise UserError(f"run {run.id} completed and dropped its optimiser state to save disk, so it cannot train "
                        "further; pretrain with --keep-state to keep it, or start a new run")
    if placement.is_main:
        with_changes = ", with " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items()) if changes else ""
        stderr.print(f"resuming {run.id} from step {start_step:,} of {total_steps:,}{with_changes}",
                     highlight=False, markup=False)
    if changes and placement.is_main:
        run.update(config=config)
    if placement.distributed:
        dist.barrier()
    return str(run.dir)


def restore(run: runs.Run, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
            placement: Placement) -> int:
    """Load the run's checkpoint into ``modules`` and ``optimizers``, mark the run running again
    (rank 0) and return the step it continues from."""
    start_step = load_checkpoint(run.dir, modules, optimizers, placement.device)["step"]
    if placement.is_main:
        _trim_metrics(run.metrics_path, start_step)
        run.manifest["epochs"] = [e for e in run.manifest["epochs"] if e["step"] <= start_step]
        run.manifest["snapshots"] = [s for s in run.manifest.get("snapshots", []) if s["step"] <= start_step]
        run.manifest.pop("failure", None)
        run.update(status="running", resumed_at_step=start_step, **runs.owner())
    return start_step


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop metric rows after ``last_step`` (the resumed run recomputes them) and a row torn by a kill."""
    if not path.exists():
        return
    kept = [row for row in runs.read_metrics(path) if row["step"] <= last_step]
    write_bytes(path, "".join(json.dumps(row) + "\n" for row in kept).encode())
