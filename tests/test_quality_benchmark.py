"""A tiny run of benchmarks/quality.py, so the protocol cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


def test_quality_protocol_runs_end_to_end(blob_store, home, tmp_path):
    out = tmp_path / "quality.json"
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--data", blob_store, "--methods", "lejepa", "--arch", "vit-t",
         "--img-size", "16", "--batch-size", "16", "--local-views", "2", "--budget-minutes", "0.25",
         "--few-shot-steps", "2", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    method = results["methods"]["lejepa"]
    assert method["steps"] >= 1 and method["budget_plan"]["steps"] == method["steps"]
    for name in ("linear", "knn", "10_shot"):
        assert 0.0 <= method[name] <= 1.0
    baselines = results["baselines"]
    assert set(baselines) == {"pixels_pca128", "random_init", "supervised_all_labels", "supervised_10_shot"}
    assert baselines["supervised_10_shot"]["draws"] == 5 and baselines["supervised_10_shot"]["training"]["steps"] == 2
    # The blobs differ in shape, so raw pixels must separate them far above chance (1/3).
    assert baselines["pixels_pca128"]["linear"] > 0.6
    assert "| supervised from scratch" in done.stdout
