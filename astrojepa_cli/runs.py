"""The run store: one folder per run with safetensors weights and a JSON manifest.

::

    runs/<run-id>/
        manifest.json        what was run, on what data, with what result
        encoder.safetensors  the encoder alone; metadata holds its timm spec
        state.safetensors    tensors needed to resume (model, optimiser)
        state.json           non-tensor resume state (step, optimiser hyper-parameters)
        metrics.jsonl        one row every --log-every steps
        encoders/step-N.safetensors  the encoder at each checkpoint (pretrain --keep-encoders)
"""

from __future__ import annotations

import json
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from astrojepa_cli import __version__, paths
from astrojepa_cli.atomic import atomic_path, write_json
from astrojepa_cli.errors import UserError

MANIFEST_SCHEMA_VERSION = 1
ENCODER_FILE = "encoder.safetensors"
SNAPSHOT_DIR = "encoders"
STATUSES = ("running", "completed", "failed", "interrupted")


@dataclass
class Run:
    """A run folder and its manifest, kept in memory and written atomically on every change."""

    dir: Path
    manifest: dict

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    def save(self) -> None:
        write_json(self.manifest_path, self.manifest)

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save()

    def add_evaluation(self, key: str, result: dict) -> None:
        """Record an evaluation (probe, anomalies, ...) under ``evaluations[key]``."""
        self.manifest.setdefault("evaluations", {})[key] = {**result, "time": now()}
        self.save()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def steady_images_per_second(metrics_path: Path) -> float:
    """Images/s over every logged window of ``metrics.jsonl`` but the first (which holds the warm-up)."""
    rates = [json.loads(line)["images_per_second"] for line in metrics_path.read_text().splitlines()][1:]
    if not rates:
        raise UserError(f"{metrics_path} needs at least two logged windows to measure a steady rate")
    return len(rates) / sum(1 / r for r in rates)


def environment(device: str) -> dict:
    import timm

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "device": device,
        "platform": platform.platform(),
    }


def create_run(root: Path | None, label: str, manifest: dict) -> Run:
    """A new run folder named ``<UTC time>-<label>-<random>``, with status ``running``."""
    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{label}-{secrets.token_hex(2)}"
    run_dir = paths.runs_dir(root) / run_id
    run_dir.mkdir(parents=True)
    run = Run(run_dir, {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "run_id": run_id,
        "astrojepa_version": __version__,
        "command": sys.argv,
        "status": "running",
        "started": now(),
        **manifest,
        "epochs": [],
        "evaluations": {},
    })
    run.save()
    return run


def open_run(ref: str | Path, root: Path | None = None) -> Run:
    """A run by id, by folder path, or ``latest``; a clear error if there is none."""
    candidate = Path(ref)
    if str(ref) == "latest":
        runs = sorted(p for p in paths.runs_dir(root).glob("*/manifest.json"))
        if not runs:
            raise UserError(f"no runs under {paths.runs_dir(root)}; run 'astrojepa pretrain' first")
        candidate = runs[-1].parent
    elif not (candidate / "manifest.json").exists():
        candidate = paths.runs_dir(root) / str(ref)
    manifest_path = candidate / "manifest.json"
    if not manifest_path.exists():
        raise UserError(f"no run '{ref}' (looked for {manifest_path})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{manifest_path} is corrupt ({exc.msg} at line {exc.lineno})") from None
    return Run(candidate, manifest)


def list_runs(root: Path | None = None) -> list[Run]:
    runs = []
    for manifest_path in sorted(paths.runs_dir(root).glob("*/manifest.json")):
        try:
            runs.append(Run(manifest_path.parent, json.loads(manifest_path.read_text())))
        except json.JSONDecodeError:
            continue
    return runs


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


def save_encoder(run: Run, encoder: torch.nn.Module, arch: str, path: Path | None = None) -> Path:
    """Write the encoder alone (to ``path``, default the run's encoder file) with the timm spec
    needed to rebuild it in its metadata."""
    path = path or run.dir / ENCODER_FILE
    metadata = {"format": "astrojepa-encoder/1", "arch": arch, "timm_spec": json.dumps(encoder.timm_spec)}
    save_tensors(path, encoder.backbone.state_dict(), metadata)
    return path


def rebuild_encoder(timm_spec: dict) -> torch.nn.Module:
    """A freshly initialised encoder of the architecture described by ``timm_spec``."""
    from registry.encoders import Encoder

    spec = dict(timm_spec)
    return Encoder(spec.pop("model_name"), **spec)


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
    encoder = rebuild_encoder(json.loads(metadata["timm_spec"]))
    encoder.backbone.load_state_dict(load_tensors(path))
    return encoder.eval()
