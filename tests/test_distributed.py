"""A real 2-process torchrun job (gloo, CPU) computes what one process computes on the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_PRETRAIN


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_two_gloo_processes_match_one_process(cli, blob_store, home):
    train = ("--data", "blobs", "--train-splits", "train", "--epochs", "1", "--max-steps", "4", "--device", "cpu", *TINY_PRETRAIN)
    single = cli.json("pretrain", *train)
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    done = subprocess.run([*torchrun, "-m", "astrojepa_cli", "pretrain", *train, "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    distributed = json.loads(done.stdout.strip().splitlines()[-1])
    assert distributed["status"] == "completed"
    manifest = json.loads((Path(distributed["run_dir"]) / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    expected, actual = _losses(Path(single["run_dir"])), _losses(Path(distributed["run_dir"]))
    assert [r["step"] for r in actual] == [r["step"] for r in expected]
    for one, two in zip(expected, actual):
        for term in ("loss", "pred", "sigreg"):
            assert two[term] == pytest.approx(one[term], rel=1e-4, abs=1e-5), (one["step"], term)
    # The epoch's SIGReg collapse monitor counts every image once, not once per process.
    single_epoch = json.loads((Path(single["run_dir"]) / "manifest.json").read_text())["epochs"][0]
    assert manifest["epochs"][0]["sigreg"] == pytest.approx(single_epoch["sigreg"], rel=1e-3)
