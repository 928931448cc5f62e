"""``runs show``: a readable summary for people, the whole manifest with ``--json``."""

from __future__ import annotations

import json

from tests.conftest import TINY_PRETRAIN

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


def test_runs_show_summarises_and_json_is_the_manifest(cli, home, blob_store):
    run = cli.json("pretrain", "--data", blob_store, *FAST)["run_id"]
    cli.json("probe", run, "--seeds", "2")
    cli.json("probe", run, "--shots", "1,4")
    shown = cli("runs", "show", run).stderr
    lines = [line.rstrip() for line in shown.splitlines()]
    assert f"run        {run}" in lines and "status     completed, step 2 of 2" in lines and "blobs: 96 images of 16×16×1" in shown
    assert "lejepa, vit-t, 16 px" in shown and "final loss" in shown
    assert "embedding  mean pooling" in shown  # the run's embedding, pretrain's default
    assert "blobs/linear" in shown and "balanced accuracy" in shown and " ± " in shown
    assert "at shots 4" in shown
    assert "{" not in shown and "'" not in shown  # no dict reprs
    manifest = json.loads((home / "runs" / run / "manifest.json").read_text())
    assert cli.json("runs", "show", run) == manifest
