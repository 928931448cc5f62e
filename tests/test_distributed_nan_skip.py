"""``--nan-policy skip`` under a real 2-process torchrun job: when the loss is NaN on one process
only, every process skips the step together (one skipping alone would leave the others waiting
in the backward pass's all-reduce for ever)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_blob_store
from tests.plugin_distribution import install_distribution
from tests.test_distributed import _free_port

PLUGIN = '''
import torch.distributed as dist
from registry import register
from registry.losses import lejepa


@register("loss", "nan-on-rank-one")
def nan_on_rank_one(encoder, local_views: int = 0, global_size: int = 16):
    """LeJEPA whose loss is NaN on process 1 at step 2."""
    objective = lejepa(encoder, local_views=local_views, global_size=global_size)
    forward = objective.forward

    def forward_with_nan(images, step, generator):
        terms = forward(images, step, generator)
        if step == 2 and dist.get_rank() == 1:
            terms = {**terms, "loss": terms["loss"] * float("nan")}
        return terms

    objective.forward = forward_with_nan
    return objective
'''


def test_a_nan_on_one_process_is_skipped_by_all(tmp_path):
    site = tmp_path / "site"
    install_distribution(site, "nan_plugin", PLUGIN, {"nan-on-rank-one": "nan_plugin"})
    home = tmp_path / "home"
    write_blob_store(home / "data" / "blobs.h5")
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    done = subprocess.run([*torchrun, "-m", "astrojepa_cli", "pretrain", "--data", "blobs", "--loss", "nan-on-rank-one",
                           "--arch", "vit-t", "--img-size", "16", "--patch-size", "4", "--batch-size", "16",
                           "--max-steps", "4", "--log-every", "1", "--nan-policy", "skip", "--device", "cpu",
                           "--quiet", "--json"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["steps"] == 4
    logged = [json.loads(line)["step"] for line in (Path(result["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert 3 not in logged and logged[-1] == 4
