"""A run's weights: atomic safetensors files, and the encoder with the timm spec that rebuilds it.

Nothing here unpickles: tensors are read with safetensors, and a file's timm spec is allow-listed
before it reaches ``timm.create_model``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from astrojepa_cli.atomic import atomic_path
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs.store import ENCODER_FILE, SNAPSHOT_DIR, Run

# The keyword arguments the built-in encoders pass to timm.create_model; a run file naming any other
# (checkpoint_path, pretrained_cfg_overlay, ...) could make timm unpickle or download, so it is refused.
TIMM_SPEC_KEYS = frozenset({"model_name", "img_size", "patch_size", "in_chans", "class_token", "global_pool", "fc_norm",
                            "dynamic_img_size", "drop_path_rate", "depth", "drop_rate", "num_groups",
                            "zero_init_last"})
TIMM_MODEL_NAME = re.compile(r"[a-z0-9_]+")

def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically write a safetensors file (contiguous CPU copies of ``tensors``)."""
    payload = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(payload, str(tmp), metadata=metadata)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise UserError(f"weights not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UserError(f"{path} is not a valid safetensors file ({exc.__class__.__name__})") from None


def snapshot_path(run: Run, step: int) -> Path:
    return run.dir / SNAPSHOT_DIR / f"step-{step:07d}.safetensors"


def save_encoder(run: Run, encoder: torch.nn.Module, arch: str, path: Path | None = None,
                 step: int | None = None) -> Path:
    """Write the encoder alone (to ``path``, default the run's encoder file) with the timm spec
    needed to rebuild it, and the optimiser step it was saved at, in its metadata."""
    path = path or run.dir / ENCODER_FILE
    metadata = {"format": "astrojepa-encoder/1", "arch": arch, "timm_spec": json.dumps(encoder.timm_spec),
                **({"step": str(step)} if step is not None else {}),
                **({"input_size": str(encoder.input_size)} if getattr(encoder, "input_size", None) else {})}
    save_tensors(path, encoder.backbone.state_dict(), metadata)
    return path


def checked_timm_spec(timm_spec: Any, source: Path | str) -> dict:
    """``timm_spec`` if it only names a timm architecture and the allowed keyword arguments
    (plain values); a run file from elsewhere must not make timm load pickles or download."""
    if not isinstance(timm_spec, dict) or not isinstance(timm_spec.get("model_name"), str):
        raise UserError(f"{source}: timm_spec must be an object with a model_name")
    import timm

    import registry.encoders  # noqa: F401  (registers astrojepa's own timm models, e.g. resnet15_gn)

    name = timm_spec["model_name"]
    if not TIMM_MODEL_NAME.fullmatch(name) or not timm.is_model(name):
        raise UserError(f"{source}: timm_spec names '{name}', which is not a timm architecture")
    refused = sorted(set(timm_spec) - TIMM_SPEC_KEYS)
    if refused:
        raise UserError(f"{source}: timm_spec has key(s) astrojepa does not pass to timm: {', '.join(refused)}")
    odd = sorted(k for k, v in timm_spec.items() if not isinstance(v, (int, float, str, bool, type(None))))
    if odd:
        raise UserError(f"{source}: timm_spec value(s) of {', '.join(odd)} must be plain numbers, strings or booleans")
    return timm_spec


def rebuild_encoder(timm_spec: dict) -> torch.nn.Module:
    """A freshly initialised encoder of the architecture described by ``timm_spec``."""
    from registry.encoders import Encoder

    spec = dict(checked_timm_spec(timm_spec, "timm_spec"))
    try:
        return Encoder(spec.pop("model_name"), **spec)
    except (TypeError, ValueError, AssertionError, RuntimeError, ZeroDivisionError) as exc:
        raise UserError(f"cannot build encoder {timm_spec['model_name']} from timm_spec: {exc}") from None


def load_encoder(run: Run) -> torch.nn.Module:
    """Rebuild a run's encoder from ``encoder.safetensors`` (no training code involved)."""
    path = run.dir / ENCODER_FILE
    if not path.exists():
        raise UserError(f"run {run.id} has no {ENCODER_FILE} yet (status: {run.manifest.get('status')})")
    return load_encoder_file(path)


def load_encoder_file(path: Path) -> torch.nn.Module:
    """Rebuild an encoder from an astrojepa encoder file (the run's, or a snapshot)."""
    from safetensors import safe_open

    if not path.exists():
        raise UserError(f"encoder file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:
        raise UserError(f"{path} is not a valid safetensors file ({exc.__class__.__name__})") from None
    if "timm_spec" not in metadata:
        raise UserError(f"{path} lacks the timm_spec metadata astrojepa writes; was it made by astrojepa?")
    try:
        timm_spec = json.loads(metadata["timm_spec"])
    except json.JSONDecodeError:
        raise UserError(f"{path}: its timm_spec metadata is not JSON") from None
    encoder = rebuild_encoder(checked_timm_spec(timm_spec, path))
    if metadata.get("input_size", "").isdigit():
        encoder.input_size = int(metadata["input_size"])
    try:
        encoder.backbone.load_state_dict(load_tensors(path))
    except RuntimeError as exc:
        reason = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise UserError(f"{path}: weights do not fit {timm_spec['model_name']} ({reason})") from None
    encoder.saved_step = int(metadata["step"]) if metadata.get("step", "").isdigit() else None
    return encoder.eval()
