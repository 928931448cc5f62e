"""The run store (one folder per run: safetensors weights and a JSON manifest), the run's weights,
and the timm export of its encoder. ``store`` holds the folder and manifest, ``weights`` the
tensors, ``manage`` the deletion and naming of runs; all are re-exported here, so callers write
``runs.open_run`` and ``runs.load_encoder``."""

from astrojepa_cli.runs.manage import delete_run, name_run
from astrojepa_cli.runs.store import (
    ENCODER_FILE, MANIFEST_SCHEMA_VERSION, SNAPSHOT_DIR, LATEST_STATUSES, STATUSES, Run, create_run, environment,
    fail_unfinished, list_runs, now, open_run, owner, read_metrics, run_pool, run_stretch, steady_images_per_second,
    unfinished_note,
)
from astrojepa_cli.runs.weights import (
    TIMM_SPEC_KEYS, checked_timm_spec, load_encoder, load_encoder_file, load_tensors, rebuild_encoder, save_encoder,
    save_tensors, snapshot_path,
)

__all__ = [
    "ENCODER_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "SNAPSHOT_DIR",
    "STATUSES",
    "LATEST_STATUSES",
    "Run",
    "create_run",
    "delete_run",
    "environment",
    "fail_unfinished",
    "list_runs",
    "name_run",
    "now",
    "open_run",
    "owner",
    "read_metrics",
    "run_pool",
    "run_stretch",
    "steady_images_per_second",
    "unfinished_note",
    "TIMM_SPEC_KEYS",
    "checked_timm_spec",
    "load_encoder",
    "load_encoder_file",
    "load_tensors",
    "rebuild_encoder",
    "save_encoder",
    "save_tensors",
    "snapshot_path",
]
