"""Recipe options of the CPU study: view augmentations, SimCLR temperature, projectors, small-input
ResNets, method-specific options and the wall-clock budget."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch

from astrojepa_cli import runs
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import encoder_img_size
from astrojepa_cli.train.budget import parse_duration, plan_steps
from registry.losses import simclr
from registry.encoders import resnet18
from registry.projector import mlp_projector
from registry.views import Augment, ViewSpec, gaussian_blur, random_views, scale_flux
from tests.conftest import TINY_PRETRAIN

TINY_SIMCLR = (*TINY_PRETRAIN, "--local-views", "0", "--loss", "simclr")


def _views(augment: Augment, seed: int = 0, scale=(1.0, 1.0)) -> torch.Tensor:
    images = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    return random_views(images, ViewSpec(2, 16, scale, ratio=(1.0, 1.0), augment=augment),
                        torch.Generator().manual_seed(seed))


def test_quarter_turns_keep_pixels_and_continuous_rotation_resamples_them():
    images = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    quarter = _views(Augment())
    # A full-image crop turned by multiples of 90° (and flipped) holds the very same pixel values.
    for view, image in zip(quarter[:4], images):
        assert torch.allclose(view.flatten().sort().values, image.flatten().sort().values, atol=1e-5)
    continuous = _views(Augment(rotation="continuous"))
    assert not torch.allclose(continuous, quarter, atol=1e-3)
    assert torch.equal(continuous, _views(Augment(rotation="continuous")))  # seeded: the same views again


def test_translation_shifts_the_view():
    assert not torch.allclose(_views(Augment(translate=0.2)), _views(Augment()), atol=1e-3)


def test_gaussian_blur_keeps_flux_smooths_and_is_identity_at_zero_sigma():
    image = torch.zeros(2, 1, 15, 15)
    image[:, :, 7, 7] = 1.0
    blurred = gaussian_blur(image, torch.tensor([0.0, 1.5]), 1.5)
    torch.testing.assert_close(blurred[0], image[0])
    assert blurred[1].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[1, 0, 7, 7] < 0.2 and blurred[1, 0, 7, 8] > 0.02


def test_flux_scaling_keeps_the_sky_and_scales_the_source():
    image = torch.full((1, 1, 9, 9), 2.0)
    image[:, :, 4, 4] = 5.0
    scaled = scale_flux(image, torch.tensor([1.5]))
    assert scaled[0, 0, 0, 0].item() == pytest.approx(2.0)
    assert scaled[0, 0, 4, 4].item() == pytest.approx(2.0 + 1.5 * 3.0)


def test_projector_depth_and_fixed_temperature():
    assert [type(m).__name__ for m in mlp_projector(8, 16, 4, depth=1)] == ["Linear"]
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp_projector(8, 16, 4, depth=2)) == 2
    learnt = simclr(resnet18(in_chans=1))
    fixed = simclr(resnet18(in_chans=1), temperature=0.2, proj_dim=16)
    assert "log_temperature" in dict(learnt.named_parameters())
    assert "log_temperature" not in dict(fixed.named_parameters())
    assert math.exp(fixed.log_temperature.item()) == pytest.approx(0.2)
    assert fixed.projector[-1].out_features == 16


def test_durations():
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("45") == 45
    for bad in ("", "fast", "30x", "-5m", "0"):
        with pytest.raises(UserError):
            parse_duration(bad)


def test_budget_plan_counts_calibration_and_epoch_ends():
    clock = {"t": 0.0}

    def step(_):
        clock["t"] += 0.5

    def epoch_end():
        clock["t"] += 2.0

    import astrojepa_cli.train.budget as budget

    original = budget.budget_clock
    budget.budget_clock = lambda: (lambda: clock["t"])
    try:
        plan = plan_steps(100.0, steps_per_epoch=10, train_step=step, epoch_end=epoch_end)
    finally:
        budget.budget_clock = original
    # Calibration: 8 steps (4 s) and one epoch end (2 s); then 0.5 s per step plus 2 s per 10 steps.
    assert plan.calibration_s == pytest.approx(6.0)
    assert plan.seconds_per_step == pytest.approx(0.5)
    assert plan.steps == int((100 - 6) / (0.5 + 0.2))


@pytest.mark.parametrize("flags, option", [
    (("--loss", "simclr", "--lam", "0.3"), "--lam"),
    (("--loss", "lejepa", "--temperature", "0.2"), "--temperature"),
    (("--loss", "simclr", "--local-views", "4"), "--local-views"),
    (("--loss", "lejepa", "--masker", "multiblock"), "--masker"),
])
def test_options_the_method_ignores_are_errors(cli, blob_store, home, flags, option):
    result = cli("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--local-views", "0", *flags, expect=2)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and option in lines[0]
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_augmentation_options_reach_the_run_and_bad_values_are_refused(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--max-steps", "2", "--rotation", "continuous",
                      "--translate", "0.05", "--blur", "1.0", "--flux-scale", "0.8", "1.25", "--temperature", "0.2",
                      "--proj-dim", "16", "--proj-depth", "2")
    config = json.loads((home / "runs" / result["run_id"] / "manifest.json").read_text())["config"]
    assert config["rotation"] == "continuous" and config["flux_scale"] == [0.8, 1.25]
    assert config["temperature"] == 0.2 and config["proj_depth"] == 2
    for flags in (("--rotation", "diagonal"), ("--translate", "0.9"), ("--flux-scale", "1.2", "0.8"),
                  ("--temperature", "0"), ("--proj-depth", "0"), ("--budget", "soon")):
        bad = cli("pretrain", "--data", "blobs", *TINY_SIMCLR, *flags, expect=2)
        assert bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_a_short_budget_times_fewer_calibration_steps(monkeypatch):
    from astrojepa_cli.train import budget

    monkeypatch.setenv(budget.CLOCK_VARIABLE, "wall")
    steps_taken = []
    plan = budget.plan_steps(1.0, 10, lambda step: (steps_taken.append(step), time.sleep(0.1)), lambda: None)
    # Two warm-up steps already spend the 0.2 s calibration share of a 1 s budget: one step is timed.
    assert plan.calibration_steps == budget.WARMUP_STEPS + 1 == len(steps_taken)
    assert plan.steps >= 1 and plan.seconds_per_step >= 0.1


def test_budget_sets_the_steps_and_records_the_calibration(cli, blob_store, home):
    # One precision: a CPU's auto calibrates two, each timing fewer steps within the budget's share.
    result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--budget", "20s", "--precision", "fp32")
    manifest = json.loads((home / "runs" / result["run_id"] / "manifest.json").read_text())
    plan = manifest["budget_plan"]
    assert plan["budget_s"] == 20 and plan["clock"] == "wall" and plan["machine"]["cores"] >= 1
    assert plan["steps"] == manifest["config"]["max_steps"] == result["steps"]
    assert plan["seconds_per_step"] > 0 and plan["calibration_steps"] == 8
    assert result["status"] == "completed"


def test_small_input_resnet_keeps_resolution_and_its_input_size(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--arch", "resnet18-w16", "--img-size", "12",
                      "--max-steps", "2")
    encoder = runs.load_encoder(runs.open_run(result["run_id"]))
    assert encoder.embed_dim == 128 and encoder.input_size == 12
    assert encoder_img_size(encoder, default=16) == 12
    # A fresh process (nothing imported but the run store) rebuilds it too.
    code = ("import sys; from astrojepa_cli import runs; "
            "print(runs.load_encoder(runs.open_run(sys.argv[1])).input_size)")
    fresh = subprocess.run([sys.executable, "-c", code, result["run_id"]], capture_output=True, text=True,
                           env={**os.environ, "ASTROJEPA_HOME": str(home)}, timeout=300)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "12", fresh.stderr[-2000:]
    # No max-pool and a stride-1 stem: the first stage sees the full 12 px.
    assert encoder.backbone.layer1(encoder.backbone.act1(encoder.backbone.bn1(
        encoder.backbone.conv1(torch.zeros(1, 1, 12, 12))))).shape[-1] == 12


def test_no_recipe_flags_gets_the_machine_preset(cli, home):
    from tests.conftest import write_blob_store

    write_blob_store(home / "data" / "many.h5", n=400, name="many")
    result = cli("pretrain", "--data", "many", "--max-steps", "2", "--quiet", "--json")
    assert "no recipe given: using preset small-cpu for this machine" in result.stderr
    manifest = json.loads((home / "runs" / json.loads(result.stdout)["run_id"] / "manifest.json").read_text())
    assert manifest["config"]["preset"] == "small-cpu" and manifest["config"]["arch"] == "resnet18"
    assert manifest["budget_plan"]["budget_s"] == 1800 and manifest["steps"] == 2
    # Any recipe option means the user chose the recipe: no preset is filled in.
    chosen = cli("pretrain", "--data", "many", *TINY_SIMCLR, "--max-steps", "1", "--json")
    assert "no recipe given" not in chosen.stderr
    unmeasured = cli("pretrain", "--data", "many", "--preset", "gpu", *TINY_SIMCLR, "--max-steps", "1", "--json")
    assert "warning: preset gpu has not been measured yet" in unmeasured.stderr


def test_probe_pools_the_last_two_stages_and_layer_norms(cli, blob_store, home):
    run = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--arch", "resnet18", "--max-steps", "2")["run_id"]
    plain = cli.json("probe", run)
    variant = cli.json("probe", run, "--pool", "last2", "--feature-norm", "layernorm")
    assert variant["protocol"] == "linear-last2-layernorm" and plain["protocol"] == "linear"
    evaluations = json.loads((home / "runs" / run / "manifest.json").read_text())["evaluations"]
    assert {"blobs/linear", "blobs/linear-last2-layernorm"} <= set(evaluations)
    encoder = runs.load_encoder(runs.open_run(run))
    from astrojepa_cli.evaluate.features import pooled

    # ResNet-18's last two stages have 256 and 512 channels.
    assert pooled(encoder, torch.zeros(2, 1, 16, 16), "last2").shape == (2, 768)
    bad = cli("probe", run, "--feature-norm", "whiten", expect=2)
    assert bad.stderr.strip().startswith("error: --feature-norm must be one of")
