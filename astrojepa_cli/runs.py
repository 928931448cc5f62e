"""The run store: one folder per run with safetensors weights and a JSON manifest.

::

    runs/<run-id>/
        manifest.json        what was run, on what data, with what result
        encoder.safetensors  the encoder alone; metadata holds its timm spec
        state.safetensors    everything needed to resume: tensors, and the rest in its metadata
        state.json           a readable copy of the resume state's non-tensor part
        metrics.jsonl        one row every --log-every steps
        encoders/step-N.safetensors  the encoder at each checkpoint (pretrain --keep-encoders)
        .lock                serialises manifest updates by the trainer and by evaluations

The trainer owns every manifest key but ``evaluations``; ``probe`` and
``anomalies`` own ``evaluations``. Each writer re-reads the manifest under the
lock and replaces only its own part, so neither erases the other's record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import re
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
USABLE_STATUSES = ("completed", "interrupted")
# The keyword arguments the built-in encoders pass to timm.create_model; a run file naming any other
# (checkpoint_path, pretrained_cfg_overlay, ...) could make timm unpickle or download, so it is refused.
TIMM_SPEC_KEYS = frozenset({"model_name", "img_size", "patch_size", "in_chans", "class_token", "global_pool", "fc_norm",
                            "dynamic_img_size", "drop_path_rate", "depth", "drop_rate", "num_groups"})
TIMM_MODEL_NAME = re.compile(r"[a-z0-9_]+")
log = logging.getLogger("astrojepa")


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

    @property
    def status(self) -> str:
        """The recorded status, except that a ``running`` run whose process is gone is ``failed``."""
        status = self.manifest.get("status")
        if status == "running" and not _owner_alive(self.manifest):
            return "failed"
        return status

    @contextlib.contextmanager
    def _locked(self):
        with open(self.dir / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _read_from_disk(self) -> dict:
        try:
            on_disk = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return on_disk if isinstance(on_disk, dict) else {}

    def save(self) -> None:
        """Write the trainer's view of the manifest, keeping the evaluations recorded on disk."""
        with self._locked():
            on_disk = self._read_from_disk()
            if "evaluations" in on_disk:
                self.manifest["evaluations"] = on_disk["evaluations"]
            write_json(self.manifest_path, self.manifest)

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save()

    def add_evaluation(self, key: str, result: dict, encoder_step: int | None = None) -> dict:
        """Record an evaluation (probe, anomalies, ...) under ``evaluations[key]``, with the run's
        status at the time and the step of the encoder evaluated (a run still training is
        evaluated at its last checkpoint)."""
        with self._locked():
            manifest = self._read_from_disk() or self.manifest
            self.manifest = manifest
            record = {**result, "time": now(), "run_status": self.status, "encoder_step": encoder_step}
            manifest.setdefault("evaluations", {})[key] = record
            write_json(self.manifest_path, manifest)
        return record


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def owner() -> dict:
    """Who is training a run: the manifest records it so a run whose process died reads as failed."""
    return {"pid": os.getpid(), "host": platform.node()}


def _owner_alive(manifest: dict) -> bool:
    if manifest.get("host") != platform.node() or not isinstance(manifest.get("pid"), int):
        return True  # another machine's process cannot be checked from here
    try:
        os.kill(manifest["pid"], 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def read_metrics(metrics_path: Path) -> list[dict]:
    """The rows of ``metrics.jsonl``; a last row torn by a kill is skipped."""
    rows = []
    lines = metrics_path.read_text().splitlines() if metrics_path.exists() else []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise UserError(f"{metrics_path} is corrupt at line {number}") from None
    return rows


def steady_images_per_second(metrics_path: Path) -> float:
    """Images/s over every logged window of ``metrics.jsonl`` but the first (which holds the warm-up)."""
    rates = [row["images_per_second"] for row in read_metrics(metrics_path)][1:]
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
        **owner(),
        **manifest,
        "epochs": [],
        "evaluations": {},
    })
    run.save()
    return run


def _read_manifest(manifest_path: Path) -> dict:
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{manifest_path} is corrupt ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{manifest_path} is corrupt (not UTF-8 text)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("status"), str):
        raise UserError(f"{manifest_path} is corrupt (not a run manifest)")
    return manifest


def open_run(ref: str | Path, root: Path | None = None, latest_of: tuple[str, ...] = USABLE_STATUSES) -> Run:
    """A run by id, by folder path, or ``latest``: the newest run whose status is in ``latest_of``
    (with a warning naming any newer run it passes over); a clear error if there is none."""
    if str(ref) == "latest":
        return _latest(root, latest_of)
    candidate = Path(ref)
    if not (candidate / "manifest.json").exists():
        candidate = paths.runs_dir(root) / str(ref)
    manifest_path = candidate / "manifest.json"
    if not manifest_path.exists():
        raise UserError(f"no run '{ref}' (looked for {manifest_path})")
    return Run(candidate, _read_manifest(manifest_path))


def _latest(root: Path | None, statuses: tuple[str, ...]) -> Run:
    passed_over = []
    for run in reversed(list_runs(root)):
        if run.status in statuses:
            if passed_over:
                log.warning("'latest' is %s; newer runs not %s: %s (name one to use it)", run.id,
                            " or ".join(statuses), ", ".join(passed_over))
            return run
        passed_over.append(f"{run.id} ({run.status})")
    if passed_over:
        raise UserError(f"no {' or '.join(statuses)} run under {paths.runs_dir(root)}; "
                        f"name one of {', '.join(passed_over)} explicitly")
    raise UserError(f"no runs under {paths.runs_dir(root)}; run 'astrojepa pretrain' first")


def list_runs(root: Path | None = None) -> list[Run]:
    """Every readable run, oldest first; a corrupt manifest is skipped with a warning."""
    runs = []
    for manifest_path in sorted(paths.runs_dir(root).glob("*/manifest.json")):
        try:
            runs.append(Run(manifest_path.parent, _read_manifest(manifest_path)))
        except (UserError, OSError) as exc:
            log.warning("skipping run %s: %s", manifest_path.parent.name, exc)
    return runs


def fail_unfinished(root: Path | None, error: str) -> None:
    """Mark ``failed``, with ``error``, every run this process left ``running`` (after a crash)."""
    for run in list_runs(root):
        if run.manifest.get("status") == "running" and run.manifest.get("pid") == os.getpid() \
                and run.manifest.get("host") == platform.node():
            run.update(status="failed", finished=now(), failure={"error": error})


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
