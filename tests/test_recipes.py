"""Recipe options: presets, crop scales and view noise, D4 test-time averaging, kept encoders and --snapshots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scipy.stats import spearmanr

from astrojepa_cli import runs

from astrojepa_cli.evaluate.features import embed_images
from astrojepa_cli.evaluate.probes.snapshots import evenly_spaced, probe_snapshots
from astrojepa_cli.train.presets import PRESETS, resolve_config
from registry.encoders import Encoder
from registry.views import dihedral_views
from tests.conftest import TINY_PRETRAIN

TINY = (*TINY_PRETRAIN, "--local-views", "0", "--loss", "simclr")


def test_dihedral_views_are_the_eight_distinct_symmetries():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    copies = dihedral_views(image)
    assert len(copies) == 8
    assert len({tuple(c.flatten().tolist()) for c in copies}) == 8
    # The set is closed under a further quarter turn: the group, not just 8 transforms.
    turned = {tuple(torch.rot90(c, 1, dims=(-2, -1)).flatten().tolist()) for c in copies}
    assert turned == {tuple(c.flatten().tolist()) for c in copies}


def test_d4_embeddings_are_invariant_to_rotations_and_flips(blob_store, home):
    torch.manual_seed(0)
    encoder = Encoder("resnet18", in_chans=1)
    store_path = home / "data" / "blobs.h5"
    images = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 1), dtype=np.uint8)
    rotated = np.rot90(images, 1, axes=(1, 2)).copy()
    plain = [embed_images(encoder, x, store_path) for x in (images, rotated)]
    averaged = [embed_images(encoder, x, store_path, tta="d4") for x in (images, rotated)]
    assert not np.allclose(plain[0], plain[1], atol=1e-4)
    np.testing.assert_allclose(averaged[0], averaged[1], atol=1e-5)


def test_preset_then_config_file_then_flags(tmp_path):
    assert set(PRESETS) == {"small-cpu", "lejepa-cpu", "gpu"}
    preset = PRESETS["small-cpu"]
    key = next(iter(preset))
    assert resolve_config({}, {"preset": "small-cpu"})[key] == preset[key]
    assert resolve_config({key: "from-file"}, {"preset": "small-cpu"})[key] == "from-file"
    assert resolve_config({key: "from-file", "preset": "small-cpu"}, {key: "flag"})[key] == "flag"
    assert resolve_config({"preset": "gpu"}, {})["preset"] == "gpu"


def test_preset_scales_and_noise_reach_the_run(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", "--preset", "small-cpu", *TINY, "--epochs", "1",
                      "--max-steps", "2", "--global-scale", "0.5", "1.0", "--view-noise", "0.1")
    config = cli.json("runs", "show", result["run_id"])["config"]
    assert config["preset"] == "small-cpu"
    assert config["global_scale"] == [0.5, 1.0] and config["view_noise"] == 0.1
    assert config["arch"] == "vit-t" and config["loss"] == "simclr"  # flags beat the preset
    assert config["embedding_pool"] == "last2"  # the preset's embedding, which probe and embed then use


@pytest.mark.parametrize("args, message", [
    (("--preset", "huge"), "error: unknown preset 'huge'; choose one of small-cpu, lejepa-cpu, gpu"),
    (("--global-scale", "0", "1"), "error: --global-scale and --local-scale must be two area fractions"),
    (("--view-noise", "-1"), "error: --view-noise must be non-negative"),
])
def test_bad_recipe_options_are_one_line_errors(cli, blob_store, args, message):
    result = cli("pretrain", "--data", "blobs", *TINY, *args, expect=2)
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_kept_encoders_give_a_loss_accuracy_spearman_across_checkpoints(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", *TINY, "--epochs", "2", "--save-every", "2",
                      "--keep-encoders", "--train-splits", "train")
    run = runs.open_run(result["run_id"])
    snapshots = run.manifest["snapshots"]
    assert [s["step"] for s in snapshots] == [2, 4, 6, 8]
    assert all((run.dir / s["file"]).exists() for s in snapshots)
    # The last kept encoder is the run's final encoder.
    final = runs.load_encoder(run).state_dict()
    kept = runs.load_encoder_file(run.dir / snapshots[-1]["file"]).state_dict()
    assert all(torch.equal(final[k], kept[k]) for k in final)

    probed = cli.json("probe", result["run_id"], "--snapshots", "--tta", "d4")
    assert probed["protocol"] == "linear-d4-snapshots"
    assert [row["step"] for row in probed["snapshots"]] == [2, 4, 6, 8]
    assert all(0 <= row["balanced_accuracy"] <= 1 for row in probed["snapshots"])
    assert [row["loss"] for row in probed["snapshots"]] == [s["loss"] for s in snapshots]
    correlation = probed["spearman"]
    assert correlation["n"] == 4
    # The blobs are easy, so every checkpoint may score the same; then rho is undefined, and says why.
    assert (correlation["rho"] is not None and -1 <= correlation["rho"] <= 1) or "same" in correlation["reason"]
    recorded = json.loads((run.dir / "manifest.json").read_text())["evaluations"]
    assert "blobs/linear-d4-snapshots" in recorded

    # The correlation itself, with a score that differs between checkpoints: the first
    # weight of each kept encoder, against the loss logged at its step.
    def first_weight(encoder: torch.nn.Module) -> dict:
        return {"score": float(next(encoder.parameters()).detach().flatten()[0])}

    measured = probe_snapshots(run, first_weight, "score")
    expected = spearmanr([s["loss"] for s in snapshots], [row["score"] for row in measured["snapshots"]])[0]
    assert measured["spearman"]["rho"] == pytest.approx(expected)
    assert len({row["score"] for row in measured["snapshots"]}) == 4
    # --max-snapshots keeps the first and the last, evenly spaced.
    assert [row["step"] for row in probe_snapshots(run, first_weight, "score", most=3)["snapshots"]] == [2, 6, 8]


def test_evenly_spaced_keeps_the_ends():
    assert evenly_spaced(list(range(45)), 10) == [0, 5, 10, 15, 20, 24, 29, 34, 39, 44]
    assert evenly_spaced([1, 2], 10) == [1, 2]
    assert evenly_spaced(list(range(5)), None) == list(range(5))


def test_snapshots_need_kept_encoders(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", *TINY, "--epochs", "1", "--max-steps", "2")
    failed = cli("probe", result["run_id"], "--snapshots", expect=2)
    assert "kept 0 encoder(s)" in failed.stderr and "--keep-encoders" in failed.stderr
