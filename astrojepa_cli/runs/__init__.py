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

# The weights need torch (seconds to import); they are imported on first use, so that reading runs,
# manifests and cached embeddings (``similar`` on a cached store, ``runs list``) never loads it.
_WEIGHTS = ("TIMM_SPEC_KEYS", "checked_timm_spec", "load_encoder", "load_encoder_file", "load_tensors",
            "rebuild_encoder", "save_encoder", "save_tensors", "snapshot_path")


def __getattr__(name: str):
    if name in _WEIGHTS:
        from astrojepa_cli.runs import weights

        return getattr(weights, name)
    raise AttributeError(f"module 'astrojepa_cli.runs' has no attribute '{name}'")


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
