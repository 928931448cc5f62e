"""Feature diagnostics: the spectrum, image properties, their correlations, the head probe, the diagnose benchmark."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.explore import diagnostics
from registry.objective import build_encoder
from tests.conftest import TINY_PRETRAIN

REPO = Path(__file__).resolve().parents[1]


def _orthonormal_centred(n: int, columns: int, seed: int) -> np.ndarray:
    """``columns`` orthonormal vectors of length ``n``, each orthogonal to the constant vector (so centred)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), rng.normal(size=(n, columns))]))
    return q[:, 1:]


def test_rankme_and_variance_shares_of_a_rank_two_matrix():
    left, right = _orthonormal_centred(200, 2, 0), _orthonormal_centred(32, 2, 1)
    embeddings = left @ np.diag([3.0, 1.0]) @ right.T  # singular values 3 and 1, columns centred
    p = np.array([0.75, 0.25])
    assert diagnostics.rankme(embeddings) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-6)  # 1.755
    shares = diagnostics.variance_shares(embeddings, tops=(1, 5))
    assert shares["top1"] == pytest.approx(9 / 10) and shares["top5"] == pytest.approx(1.0)
    flat = _orthonormal_centred(200, 8, 2) @ np.eye(8)
    assert diagnostics.rankme(flat) == pytest.approx(8.0, rel=1e-6)


def _blob(size: int, amplitude: float, sigma: float, dx: float, dy: float, sky: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    return sky + amplitude * np.exp(-((x - dx) ** 2 + (y - dy) ** 2) / (2 * sigma**2))


def test_pixel_properties_of_an_offset_gaussian_blob():
    image = _blob(33, amplitude=100.0, sigma=1.5, dx=3.0, dy=-4.0, sky=5.0)
    pixels = torch.tensor(np.stack([image] * 3)[None], dtype=torch.float32)  # three equal bands
    props = diagnostics.pixel_properties(pixels)
    assert props["flux"][0] == pytest.approx(100 * 2 * math.pi * 1.5**2, rel=1e-3)
    assert props["size"][0] == pytest.approx(math.sqrt(2) * 1.5, rel=1e-3)  # E|r|² = 2σ² for a 2-D Gaussian
    assert props["centring"][0] == pytest.approx(5.0, abs=1e-3)
    assert props["background"][0] == pytest.approx(5.0, abs=1e-3)


def test_image_properties_read_the_pixels_the_encoder_sees(tmp_path):
    """From a store, normalised and resized to img_size: the flux ratio survives, the offset scales with the size."""
    images = [_blob(16, 100.0, 1.2, 2.0, 0.0, 10.0), _blob(16, 200.0, 1.2, 2.0, 0.0, 10.0),
              _blob(16, 100.0, 1.2, 0.0, 0.0, 10.0)]
    path = tmp_path / "three.h5"
    with StoreWriter(path, name="three", image_shape=(16, 16, 1), dtype=np.uint8, class_names=["a"],
                     provenance={"source": "test"}) as writer:
        writer.append(np.round(np.stack(images)[..., None]).astype(np.uint8), [0, 0, 0], ["a", "b", "c"],
                      ["train"] * 3)
        writer.finish()
    full, half = diagnostics.image_properties(path, 16), diagnostics.image_properties(path, 8)
    assert full["flux"][1] / full["flux"][0] == pytest.approx(2.0, rel=0.03)
    assert full["centring"][0] == pytest.approx(2.0, abs=0.05) and full["centring"][2] < 0.05
    assert half["centring"][0] == pytest.approx(1.0, abs=0.05)  # seen at half the size, the offset halves


def test_a_component_built_from_flux_correlates_with_flux_and_goes_when_removed():
    rng = np.random.default_rng(0)
    properties = {"flux": rng.lognormal(size=500), "size": rng.normal(size=500)}
    embeddings = np.column_stack([10 * np.log(properties["flux"]), rng.normal(scale=0.1, size=(500, 7))])
    corr = diagnostics.component_correlations(embeddings, properties, components=3)
    assert corr["properties"] == ["flux", "size"] and len(corr["rho"]) == 3
    assert abs(corr["rho"][0][0]) > 0.99 and abs(corr["rho"][0][1]) < 0.15
    residual = diagnostics.remove_top_components(embeddings, 1)
    assert abs(diagnostics.component_correlations(residual, properties, components=1)["rho"][0][0]) < 0.15
    assert np.allclose(diagnostics.remove_top_components(embeddings, 0), embeddings, atol=1e-5)


def test_embedding_and_head_features_come_from_one_pass(blob_store, home):
    torch.manual_seed(0)
    encoder = build_encoder("resnet18-w16", 1, 16, patch_size=8)
    encoder.input_size = 16
    head = torch.nn.Linear(encoder.embed_dim, 6)
    embedded, projected = diagnostics.embedding_and_head_features(encoder, head, home / "data" / "blobs.h5")
    assert embedded.embeddings.shape == (96, encoder.embed_dim) and projected.embeddings.shape == (96, 6)
    with torch.no_grad():  # a linear head commutes with the D4 mean, so its output is head(mean embedding)
        expected = head(torch.from_numpy(embedded.embeddings)).numpy()
    assert np.allclose(projected.embeddings, expected, atol=1e-4)


def test_temperature_trajectory_reads_the_logged_column(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in [{"step": 1, "loss": 2.0, "temperature": 0.07},
                                                         {"step": 2, "loss": 1.0, "temperature": 0.09}]) + "\n")
    assert diagnostics.temperature_trajectory(metrics) == {"step": [1, 2], "temperature": [0.07, 0.09]}


def test_diagnose_benchmark_end_to_end(cli, home, blob_store, tmp_path):
    # A narrow ResNet (the last --arch wins) builds and embeds several times faster than the tiny ViT.
    run = cli.json("pretrain", "--data", blob_store, *TINY_PRETRAIN, "--local-views", "0", "--loss", "simclr",
                   "--arch", "resnet18-w16", "--max-steps", "2")
    out, figure = tmp_path / "diagnosis.json", tmp_path / "diagnosis.png"
    command = [sys.executable, str(REPO / "benchmarks" / "diagnose.py"), run["run_id"], "--data", blob_store,
               "--out", str(out), "--figure", str(figure), "--remove", "1", "--draws", "1"]
    environment = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["dataset"] == "blobs" and result["run"]["run_id"] == run["run_id"]
    for block in (result["learned"], result["random_weights"]):
        assert 1.0 <= block["spectrum"]["rankme"] <= 96
        assert set(block["scores_removed"]) == {"0", "1"}
        assert 0.0 <= block["scores_removed"]["1"]["10-shot"]["balanced_accuracy"] <= 1.0
        assert len(block["correlations"]["rho"]) == 5
    assert result["learned"]["spectrum"]["rankme"] != result["random_weights"]["spectrum"]["rankme"]
    assert result["projector"]["spectrum"]["dim"] == 128  # SimCLR's 128-d projection, rebuilt from the checkpoint
    assert result["temperature"]["step"] == [1, 2] and len(result["temperature"]["temperature"]) == 2
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
