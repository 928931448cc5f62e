"""Resumable checkpoints: one ``state.safetensors`` holds the tensors and, in its
metadata, the rest of the state (step, optimiser hyper-parameters, extras).

One file renamed into place is atomic: a crash leaves the previous checkpoint or
the new one, never half of each. ``state.json`` is a readable copy written
afterwards; the loader trusts the safetensors file, and reads ``state.json``
only beside a checkpoint written before the state moved into its metadata.
A run's checkpoint also saves its encoder file (and, with ``--keep-encoders``, a snapshot).
The last checkpoint of a completed run is saved without optimiser state (two thirds of the
file for AdamW) unless the run keeps it (``--keep-state``) to train further.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from astrojepa_cli.atomic import write_json
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs import Run, load_tensors, save_encoder, save_tensors, snapshot_path

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
STATE_KEY = "state"


def _flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, slots in state["state"].items():
        for slot, value in slots.items():
            key = f"{param_id}.{slot}"
            if torch.is_tensor(value):
                tensors[f"{prefix}.{key}"] = value
            else:
                scalars[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], described: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            param_id, slot = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(param_id), {})[slot] = value
    for key, value in described["scalars"].items():
        param_id, slot = key.split(".", 1)
        state.setdefault(int(param_id), {})[slot] = value
    return {"state": state, "param_groups": described["param_groups"]}


def save_checkpoint(run_dir: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    step: int, extra: dict) -> None:
    """Atomically save everything needed to continue after ``step`` optimiser steps."""
    tensors, optimizer_json = {}, {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for name, optimizer in optimizers.items():
        optimizer_tensors, optimizer_json[name] = _flatten_optimizer(f"optimizer.{name}", optimizer)
        tensors.update(optimizer_tensors)
    described = {"step": step, "optimizers": optimizer_json, **extra}
    save_tensors(run_dir / STATE_TENSORS, tensors, metadata={"step": str(step), STATE_KEY: json.dumps(described)})
    write_json(run_dir / STATE_JSON, described)


def load_checkpoint(run_dir: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    device: torch.device) -> dict:
    """Restore ``modules`` and ``optimizers`` in place; return the JSON state (``step`` and extras)."""
    described = _described_state(run_dir)
    tensors = {k: v.to(device) for k, v in load_tensors(run_dir / STATE_TENSORS).items()}
    for name, module in modules.items():
        module.load_state_dict({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")})
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(_unflatten_optimizer(f"optimizer.{name}", tensors, described["optimizers"][name]))
        _match_parameter_layout(optimizer)
    return described


def checkpoint_step(run_dir: Path) -> int:
    """The step a run's checkpoint was saved after (read from its metadata; no tensor is loaded)."""
    return int(_described_state(run_dir)["step"])


def has_optimizer_state(run_dir: Path) -> bool:
    """Whether the checkpoint can continue training: a completed run drops its optimiser state
    (the model weights stay, for figures and diagnostics) unless it was told ``--keep-state``."""
    return bool(_described_state(run_dir)["optimizers"])


def _described_state(run_dir: Path) -> dict:
    """The non-tensor state: from the tensors' metadata, else (older runs) from a matching ``state.json``."""
    json_path, tensor_path = run_dir / STATE_JSON, run_dir / STATE_TENSORS
    if not tensor_path.exists():
        raise UserError(f"run {run_dir.name} has no checkpoint to resume from")
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UserError(f"{tensor_path} is not a valid safetensors file ({exc.__class__.__name__})") from None
    if STATE_KEY in metadata:
        return json.loads(metadata[STATE_KEY])
    if not json_path.exists():
        raise UserError(f"run {run_dir.name} has no checkpoint to resume from")
    described = json.loads(json_path.read_text())
    if int(metadata.get("step", -1)) != described["step"]:
        raise UserError(f"checkpoint of run {run_dir.name} is inconsistent (tensors at step {metadata.get('step')}, "
                        f"state.json at step {described['step']})")
    return described


def _match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each restored state tensor its parameter's memory layout (e.g. channels-last).

    safetensors stores contiguous tensors, and a fused optimiser walks a parameter
    and its state as flat buffers, so a layout mismatch would silently mix elements.
    """
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            state = optimizer.state.get(parameter, {})
            for slot, value in state.items():
                if torch.is_tensor(value) and value.shape == parameter.shape and value.stride() != parameter.stride():
                    state[slot] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)


def save_run_checkpoint(run: Run, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                        encoder: torch.nn.Module, arch: str, step: int, epoch: int, loss: float | None,
                        keep_encoder: bool) -> None:
    """The training state, the run's encoder (and with ``keep_encoder`` a snapshot of it) and the manifest."""
    save_checkpoint(run.dir, modules, optimizers, step, {"epoch": epoch})
    save_encoder(run, encoder, arch, step=step)
    if keep_encoder:
        path = save_encoder(run, encoder, arch, snapshot_path(run, step), step)
        run.manifest.setdefault("snapshots", []).append(
            {"step": step, "loss": loss, "file": str(path.relative_to(run.dir))})
    run.save()
