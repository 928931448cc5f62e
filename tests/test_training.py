"""The training engine survives interruption exactly and says when training goes wrong."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import registry
from astrojepa_cli.train.checkpoint import load_checkpoint, save_checkpoint
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.build import build_optimizer, to_training_layout
from registry.losses import lejepa
from registry.objective import build_objective
from tests.conftest import TINY_PRETRAIN

STEPS = 24


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}


def _pretrain_process(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "astrojepa_cli", "pretrain", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(run_root: Path, count: int, process: subprocess.Popen, exclude: str = "",
                   timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for metrics in run_root.glob("*/metrics.jsonl"):
            if metrics.parent.name != exclude and len(metrics.read_text().splitlines()) >= count:
                return metrics.parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the step in time")


TRAIN = ("--data", "blobs", "--epochs", "8", "--max-steps", str(STEPS), "--save-every", "3", *TINY_PRETRAIN)


def test_sigkill_then_resume_gives_identical_losses(cli, blob_store, home):
    reference = cli.json("pretrain", *TRAIN)
    expected = _losses(Path(reference["run_dir"]))
    assert sorted(expected) == list(range(1, STEPS + 1))

    process = _pretrain_process(home, *TRAIN)
    kill_after = random.Random().randint(4, STEPS - 6)
    run_dir = _wait_for_rows(home / "runs", kill_after, process, exclude=reference["run_id"])
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"

    resumed = cli.json("pretrain", "--resume", run_dir.name, "--quiet")
    assert resumed["status"] == "completed" and resumed["steps"] == STEPS
    actual = _losses(run_dir)
    assert sorted(actual) == sorted(expected)
    for step, loss in expected.items():
        assert actual[step] == pytest.approx(loss, abs=1e-6), f"step {step}"


def test_sigterm_saves_marks_interrupted_and_exits_130(cli, blob_store, home):
    process = _pretrain_process(home, "--data", "blobs", "--epochs", "50", "--max-steps", "40", *TINY_PRETRAIN)
    run_dir = _wait_for_rows(home / "runs", 3, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    saved_step = json.loads((run_dir / "state.json").read_text())["step"]
    assert saved_step == manifest["steps"] >= 3
    resumed = cli.json("pretrain", "--resume", run_dir.name, "--quiet")
    assert resumed["status"] == "completed" and resumed["steps"] > saved_step


@registry.register("loss", "test-nan-after-4")
def _nan_after_four_steps(encoder, **kwargs):
    """Test-only objective: LeJEPA whose loss turns NaN from step 4 on."""

    class NanLater(type(lejepa(encoder, local_views=0, global_size=16))):
        def forward(self, images, step, generator):
            terms = super().forward(images, step, generator)
            if step >= 4:
                terms["loss"] = terms["loss"] * torch.tensor(float("nan"))
            return terms

    objective = lejepa(encoder, local_views=0, global_size=16)
    objective.__class__ = NanLater
    return objective


def test_nan_loss_fails_the_run_and_keeps_last_good_checkpoint(cli, blob_store, home):
    result = cli("pretrain", "--data", "blobs", "--loss", "test-nan-after-4", "--epochs", "4", "--save-every", "2",
                 *TINY_PRETRAIN, "--json", expect=3)
    payload = json.loads(result.stdout)
    assert payload["status"] == "failed"
    assert "NaN" in result.stderr
    run_dir = Path(payload["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["failure"]["step"] == 5
    assert "pred" in manifest["failure"]["terms"]
    assert json.loads((run_dir / "state.json").read_text())["step"] == 4
    weights = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(run_dir / "state.safetensors"))
    assert all(torch.isfinite(t.float()).all() for t in weights.values())


def test_config_file_with_flag_override_and_observability(cli, blob_store, home, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('epochs = 2\nlam = 0.3\nbatch_size = 8\n')
    result = cli.json("pretrain", "--data", "blobs", "--config", str(config), "--batch-size", "16",
                      "--train-splits", "train", *TINY_PRETRAIN)
    manifest = cli.json("runs", "show", result["run_id"])
    assert manifest["config"]["lam"] == 0.3 and manifest["config"]["epochs"] == 2
    assert manifest["config"]["batch_size"] == 16
    assert result["steps"] == 2 * (64 // 16)
    rows = [json.loads(line) for line in (Path(result["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "loss", "pred", "sigreg", "lr", "images_per_second"} <= set(rows[0])
    epochs = manifest["epochs"]
    assert len(epochs) == 2
    assert {"std_min", "std_mean", "effective_rank", "sigreg", "online_probe_accuracy"} <= set(epochs[0])
    assert 0.0 <= epochs[-1]["online_probe_accuracy"] <= 1.0


def test_bad_config_key_is_a_one_line_error(cli, blob_store, tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"epochz": 3}')
    result = cli("pretrain", "--data", "blobs", "--config", str(config), expect=2)
    assert result.stderr.strip() == f"error: unknown key(s) in {config}: epochz"


def test_channels_last_cnn_with_fused_adamw_resumes_exactly(tmp_path):
    """A CNN trains channels-last with fused AdamW; a checkpoint restores its optimiser state in that layout."""
    config = PretrainConfig(data="blobs", arch="resnet18", loss="simclr", img_size=16).with_method_defaults()
    cpu = torch.device("cpu")
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))

    def fresh():
        torch.manual_seed(0)
        objective = to_training_layout(build_objective(config, 3, 16), cpu)
        return objective, build_optimizer(objective, config, cpu)

    def train_step(objective, optimizer, step):
        objective(images, step, torch.Generator().manual_seed(step))["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    uninterrupted, uninterrupted_optimizer = fresh()
    stem = uninterrupted.encoder.backbone.conv1.weight
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
    assert uninterrupted_optimizer.defaults["fused"]
    for step in range(2):
        train_step(uninterrupted, uninterrupted_optimizer, step)
    save_checkpoint(tmp_path, {"objective": uninterrupted}, {"objective": uninterrupted_optimizer}, 2, {})

    resumed, resumed_optimizer = fresh()
    load_checkpoint(tmp_path, {"objective": resumed}, {"objective": resumed_optimizer}, cpu)
    for step in (2, 3):
        train_step(uninterrupted, uninterrupted_optimizer, step)
        train_step(resumed, resumed_optimizer, step)
    for (name, expected), actual in zip(uninterrupted.named_parameters(), resumed.parameters()):
        assert torch.allclose(actual, expected, atol=1e-6), name
