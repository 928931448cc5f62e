"""View options that take colour away and keep morphology: reddening, band gain, single-band views and
square crops. Each changes what it says and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astrojepa_cli.train.config import PretrainConfig
from registry.objective import build_objective
from registry.photometry import SDSS_EXTINCTION, extinction_factors
from registry.views import Augment, ViewSpec, random_views
from tests.conftest import TINY_PRETRAIN

# The tiny pretraining flags, without the local views only LeJEPA takes.
TINY = tuple(flag for i, flag in enumerate(TINY_PRETRAIN)
             if "--local-views" not in TINY_PRETRAIN[max(i - 1, 0):i + 1])

SKY = torch.tensor([0.2, -0.1, 0.3])
PEAK = torch.tensor([3.0, 2.0, 1.0])
SIZE = 16


def _galaxies(n: int, size: int = SIZE, sigma: float = 2.0) -> torch.Tensor:
    """``n`` 3-channel images: a sky level per channel and a round Gaussian source centred on the image
    (unchanged by flips and quarter turns, so a full-frame view holds the same pixels). The source ends
    at 2.5 sigma, so most pixels are sky alone and their median is the sky level."""
    y, x = torch.meshgrid(torch.arange(size) - (size - 1) / 2, torch.arange(size) - (size - 1) / 2, indexing="ij")
    radius2 = x**2 + y**2
    blob = torch.exp(-radius2 / (2 * sigma**2)) * (radius2 < (2.5 * sigma) ** 2)
    return (SKY.view(3, 1, 1) + PEAK.view(3, 1, 1) * blob).expand(n, 3, size, size).contiguous()


def _views(augment: Augment, images: torch.Tensor, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed: int = 0):
    spec = ViewSpec(2, images.shape[-1], scale, ratio, augment)
    return random_views(images, spec, torch.Generator().manual_seed(seed))


def _source_factors(views: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per view and channel, the factor on the source's flux above the sky (from its peak pixel)."""
    centre = images.shape[-1] // 2
    original = (images - SKY.view(1, 3, 1, 1))[:, :, centre, centre].repeat(2, 1)
    return (views - SKY.view(1, 3, 1, 1))[:, :, centre, centre] / original


def test_reddening_dims_blue_bands_most_and_leaves_the_sky():
    images = _galaxies(32)
    plain = _views(Augment(), images)
    reddened = _views(Augment(reddening=0.5), images)
    factors = _source_factors(reddened, images)
    # The store's RGB channels of an SDSS composite are i, r, g: the default coefficients follow that order.
    ebv = -2.5 * torch.log10(factors[:, 1]) / SDSS_EXTINCTION["r"]
    assert 0 <= ebv.min() and ebv.max() <= 0.5 and ebv.std() > 0.05
    expected = extinction_factors(ebv, torch.tensor([SDSS_EXTINCTION[b] for b in "irg"]))
    torch.testing.assert_close(factors, expected, rtol=1e-4, atol=1e-5)
    # g/r (channel 2 / channel 1) falls with E(B-V); i/r rises.
    colour_g_r = factors[:, 2] / factors[:, 1]
    assert bool((colour_g_r <= 1 + 1e-6).all()) and bool((factors[:, 0] / factors[:, 1] >= 1 - 1e-6).all())
    # The sky stays where it was, and so does every pixel's position (the same geometry was drawn).
    torch.testing.assert_close(reddened[..., 0, 0], SKY.expand(64, 3), rtol=0, atol=1e-5)
    ratio = (reddened - SKY.view(1, 3, 1, 1)) / (plain - SKY.view(1, 3, 1, 1))
    torch.testing.assert_close(ratio[..., 5:11, 5:11], factors[..., None, None].expand(-1, -1, 6, 6),
                               rtol=1e-3, atol=1e-3)


def test_reddening_needs_one_coefficient_per_channel():
    one_band = _galaxies(4)[:, :1]
    with pytest.raises(ValueError, match="one extinction coefficient per channel"):
        _views(Augment(reddening=0.3), one_band)
    # A single coefficient makes reddening a flux scaling of the one band.
    scaled = _views(Augment(reddening=0.3, extinction=(2.285,)), one_band)
    assert scaled.shape == (8, 1, SIZE, SIZE)


def test_band_gain_changes_each_channel_by_its_own_log_normal_factor():
    images = _galaxies(256)
    factors = _source_factors(_views(Augment(band_gain=0.2), images), images)
    log_gain = factors.log()
    assert log_gain.std().item() == pytest.approx(0.2, rel=0.1)
    assert abs(log_gain.mean().item()) < 0.03
    # Channels move independently, so colours (ratios between channels) change too.
    assert (log_gain[:, 0] - log_gain[:, 1]).std().item() == pytest.approx(0.2 * math.sqrt(2), rel=0.1)
    sky = _views(Augment(band_gain=0.2), images)[..., 0, 0]
    torch.testing.assert_close(sky, SKY.expand(512, 3), rtol=0, atol=1e-5)


def test_drop_bands_leaves_one_real_band_in_every_channel():
    images = _galaxies(64) * torch.linspace(0.5, 1.5, 64).view(64, 1, 1, 1)
    plain = _views(Augment(), images)
    dropped = _views(Augment(drop_bands=1.0), images)
    assert bool((dropped == dropped[:, :1]).all())
    # Each view's band is one of its own channels, not a blend.
    matches = torch.stack([(dropped[:, 0] == plain[:, c]).flatten(1).all(1) for c in range(3)], dim=1)
    assert bool(matches.any(1).all()) and bool(matches.any(0).all())
    half = _views(Augment(drop_bands=0.5), images)
    single = (half == half[:, :1]).flatten(1).all(1).float().mean().item()
    assert 0.3 < single < 0.7
    torch.testing.assert_close(_views(Augment(drop_bands=0.0), images), plain)


def _axis_ratios(views: torch.Tensor) -> np.ndarray:
    """Minor over major axis of each view's source, from the second moments of its flux above the sky."""
    weights = (views[:, 0] - SKY[0]).clamp_min(0).double()
    size = views.shape[-1]
    y, x = torch.meshgrid(torch.arange(size).double(), torch.arange(size).double(), indexing="ij")
    total = weights.sum((1, 2))
    mx, my = (weights * x).sum((1, 2)) / total, (weights * y).sum((1, 2)) / total
    dx, dy = x - mx[:, None, None], y - my[:, None, None]
    cov = torch.stack([torch.stack([(weights * dx * dx).sum((1, 2)), (weights * dx * dy).sum((1, 2))], -1),
                       torch.stack([(weights * dx * dy).sum((1, 2)), (weights * dy * dy).sum((1, 2))], -1)], -2)
    eig = torch.linalg.eigvalsh(cov / total[:, None, None])
    return torch.sqrt(eig[:, 0] / eig[:, 1]).numpy()


def test_square_crops_keep_a_round_source_round_and_the_old_jitter_does_not():
    images = _galaxies(64, size=32, sigma=2.5)
    square = _axis_ratios(_views(Augment(), images, scale=(0.6, 1.0)))
    assert square.min() > 0.97
    jittered = _axis_ratios(_views(Augment(), images, scale=(0.6, 1.0), ratio=(0.75, 4 / 3)))
    assert jittered.min() < 0.85 and np.median(jittered) < 0.95


def test_the_default_crop_is_square_and_old_runs_keep_their_ratio():
    assert PretrainConfig().crop_ratio == (1.0, 1.0)
    new = build_objective(PretrainConfig(loss="simclr", arch="resnet18"), 3, 16)
    assert new.views.ratio == (1.0, 1.0)
    recorded = {k: v for k, v in PretrainConfig(loss="simclr", arch="resnet18").to_json().items() if k != "crop_ratio"}
    old = PretrainConfig.from_json(recorded)
    assert old.crop_ratio == (3 / 4, 4 / 3)
    assert build_objective(old, 3, 16).views.ratio == (3 / 4, 4 / 3)
    chosen = PretrainConfig.from_json({**recorded, "crop_ratio": [0.8, 1.25]})
    assert build_objective(chosen, 3, 16).views.ratio == (0.8, 1.25)


@pytest.mark.parametrize("flags, message", [
    (("--reddening", "0.2"), "one extinction coefficient per channel"),
    (("--drop-bands", "1.5"), "--drop-bands must be a probability"),
    (("--band-gain", "-0.1"), "--band-gain must be non-negative"),
    (("--crop-ratio", "1.2", "0.9"), "--crop-ratio must be two aspect ratios"),
    (("--extinction-coefficients", "2.285"), "applies only with --reddening"),
    (("--reddening", "0.2", "--extinction-coefficients", "a,b"), "comma list of numbers"),
    (("--loss", "ijepa", "--crop-ratio", "0.75", "1.333"), "--crop-ratio does not apply to --loss ijepa"),
])
def test_bad_view_options_are_one_error_line(cli, blob_store, home, flags, message):
    result = cli("pretrain", "--data", blob_store, *TINY, "--max-steps", "1", *flags, expect=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_view_options_reach_the_run(cli, blob_store, home):
    made = cli.json("pretrain", "--data", blob_store, *TINY, "--max-steps", "2", "--loss", "simclr",
                    "--reddening", "0.3", "--extinction-coefficients", "2.285", "--band-gain", "0.1",
                    "--drop-bands", "0.5", "--crop-ratio", "0.75", "1.333")
    assert made["status"] == "completed"
    config = cli.json("runs", "show", made["run_id"])["config"]
    assert (config["reddening"], config["extinction_coefficients"], config["band_gain"], config["drop_bands"],
            config["crop_ratio"]) == (0.3, [2.285], 0.1, 0.5, [0.75, 1.333])
