"""The run store: one folder per run with safetensors weights and a JSON manifest.

::

    runs/<run-id>/
        manifest.json        what was run, on what data, with what result
        encoder.safetensors  the encoder alone; metadata holds its timm spec
        state.safetensors    everything needed to resume: tensors, and the rest in its metadata
        state.json           a readable copy of the resume state's non-tensor part
        metrics.jsonl        one row every --log-every steps
        encoders/step-N.safetensors  the encoder at each checkpoint (pretrain --keep-encoders)
        .lock                serialises manifest updates (trainer, evaluations, naming, deletion)

The trainer owns every manifest key but ``evaluations`` (owned by ``probe`` and
``anomalies``) and ``name`` (owned by ``runs tag``). Each writer re-reads the
manifest under the lock and replaces only its own part, so none erases another's
record; an update that finds the run deleted meanwhile (``runs rm``) is an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from astrojepa_cli import __version__, paths
from astrojepa_cli.atomic import write_json
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs.machine import cpu_record

MANIFEST_SCHEMA_VERSION = 1
ENCODER_FILE = "encoder.safetensors"
SNAPSHOT_DIR = "encoders"
STATUSES = ("running", "completed", "failed", "interrupted")
# What ``latest`` means: the newest completed run (an interrupted or failed one must be named).
LATEST_STATUSES = ("completed",)
NOT_THE_TRAINERS = ("evaluations", "name")  # manifest keys that other commands own
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
    def locked(self, doing: str) -> Iterator[dict]:
        """Hold the run's lock and yield the manifest as on disk now ({} if there is none yet).
        A run deleted meanwhile raises, naming what was ``doing``, instead of getting its folder
        recreated with a manifest alone."""
        lock_path = self.dir / ".lock"
        try:
            handle = open(lock_path, "a")
        except FileNotFoundError:
            raise UserError(f"run {self.id} was deleted while {doing}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            # runs rm renames the folder away under this lock, so a waiter may hold the lock of a doomed folder
            try:
                in_place = os.path.samestat(os.fstat(handle.fileno()), os.stat(lock_path))
            except FileNotFoundError:
                in_place = False
            if not in_place:
                raise UserError(f"run {self.id} was deleted while {doing}")
            yield self._read_from_disk()

    def _read_from_disk(self) -> dict:
        try:
            on_disk = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return on_disk if isinstance(on_disk, dict) else {}

    def save(self) -> None:
        """Write the trainer's view of the manifest, keeping the keys other commands own as on disk."""
        with self.locked("its manifest was being written") as on_disk:
            if on_disk:
                for key in NOT_THE_TRAINERS:
                    if key in on_disk:
                        self.manifest[key] = on_disk[key]
                    else:
                        self.manifest.pop(key, None)
            write_json(self.manifest_path, self.manifest)

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save()

    def add_evaluation(self, key: str, result: dict, encoder_step: int | None = None) -> dict:
        """Record an evaluation (probe, anomalies, ...) under ``evaluations[key]``, with the run's
        status at the time and the step of the encoder evaluated (a run still training is
        evaluated at its last checkpoint). The newest record is always the last key."""
        with self.locked("being evaluated; the result is not recorded") as on_disk:
            manifest = on_disk or self.manifest
            self.manifest = manifest
            record = {**result, "time": now(), "run_status": self.status, "encoder_step": encoder_step}
            evaluations = manifest.setdefault("evaluations", {})
            evaluations.pop(key, None)  # re-recorded evaluations move last: the order is the order of recording
            evaluations[key] = record
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
    """Versions, device and platform, and the CPU with the matrix instructions that set its fp32 and bf16 speed."""
    import timm
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "device": device,
        "platform": platform.platform(),
        **cpu_record(),
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


def open_run(ref: str | Path, root: Path | None = None, latest_of: tuple[str, ...] = LATEST_STATUSES) -> Run:
    """A run by id, by folder path, or ``latest``: the newest run whose status is in ``latest_of``
    (with a warning naming any newer run it passes over); a clear error if there is none."""
    if str(ref) == "latest":
        return _latest(root, latest_of)
    candidate = Path(ref)
    if not (candidate / "manifest.json").exists():
        candidate = paths.runs_dir(root) / str(ref)
    manifest_path = candidate / "manifest.json"
    if not manifest_path.exists():
        named = [run for run in list_runs(root) if run.manifest.get("name") == str(ref)]
        if named:
            return named[0]
        raise UserError(f"no run '{ref}' (looked for {manifest_path}, and for a run named so)")
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


def run_stretch(manifest: dict) -> str:
    """The intensity stretch a run was trained with (``none`` for runs that predate stretches)."""
    return manifest.get("config", {}).get("stretch") or "none"


def run_pool(manifest: dict) -> str:
    """The pooling of a run's embedding (``pretrain --embedding-pool``; ``mean`` for runs that predate it)."""
    return manifest.get("config", {}).get("embedding_pool") or "mean"


def unfinished_note(run: Run) -> str | None:
    """A warning for evaluating a run that did not complete: which of its steps its encoder holds."""
    status = run.manifest.get("status")
    if status == "completed":
        return None
    steps, total = run.manifest.get("steps"), run.manifest.get("total_steps")
    progress = f" after {steps} of {total} steps" if steps is not None and total else ""
    return f"run {run.id} is {status}{progress}; this uses the encoder it saved last"
