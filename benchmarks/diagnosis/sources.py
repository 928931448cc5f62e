"""Where a diagnosis starts: the run (by id or folder, or by the key of a sweep row, with the scores
that sweep recorded) and its trained projector, rebuilt from the run's checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from astrojepa_cli import runs
from astrojepa_cli.errors import UserError
from astrojepa_cli.train.checkpoint import STATE_TENSORS
from astrojepa_cli.train.config import PretrainConfig
from registry.objective import build_objective


def resolve_run(ref: str, sweep: Path | None, root: Path | None, dataset: str) -> tuple[runs.Run, dict]:
    """The run named by ``ref`` (a run id or folder, or with ``sweep`` the key of one of its finished rows),
    and the frozen-protocol scores that sweep already recorded on ``dataset`` for it (``learned``) and
    for its random-weights baseline (``random_weights``), where it has them."""
    if sweep is None:
        return runs.open_run(ref, root), {}
    rows_path = sweep / "rows.jsonl"
    lines = rows_path.read_text().splitlines() if rows_path.exists() else []
    rows = [json.loads(line) for line in lines if line.strip()]
    found = next((row for row in rows if row.get("kind") == "recipe" and row.get("key") == ref), None)
    if found is None:
        raise UserError(f"no finished row '{ref}' in {rows_path}")
    recorded = {}
    if found["dataset"] == dataset and found.get("tta") == "d4":
        recorded["learned"] = found["scores"]
        baseline = next((row for row in rows if row.get("key") == found["baselines"]["random_weights"]), None)
        if baseline is not None:
            recorded["random_weights"] = baseline["scores"]
    return runs.open_run(found["run_id"], root), recorded


def trained_head(run: runs.Run, encoder: torch.nn.Module, channels: int, img_size: int) -> torch.nn.Module | None:
    """The run's projector, rebuilt with its objective and loaded from ``state.safetensors`` (None if it has none)."""
    config = PretrainConfig.from_json(run.manifest["config"])
    objective = build_objective(config, channels, img_size)
    if not hasattr(objective, "projector"):
        return None
    tensors = runs.load_tensors(run.dir / STATE_TENSORS)
    prefix = "objective."
    objective.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    with safe_open(str(run.dir / STATE_TENSORS), framework="pt") as handle:
        state_step = (handle.metadata() or {}).get("step")
    if encoder.saved_step is not None and state_step is not None and encoder.saved_step != int(state_step):
        raise UserError(f"run {run.id}: encoder file at step {encoder.saved_step}, checkpoint at step {state_step}")
    return objective.projector
