"""Shared fixtures: an isolated ASTROJEPA_HOME, the real CLI, and small real stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from astrojepa_cli.app import app
from astrojepa_cli.data.store_writer import StoreWriter

GZ1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "gz1-sdss"

# Tiny models run fastest on one thread, and far faster when other processes share the cores.
torch.set_num_threads(1)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh ASTROJEPA_HOME for one test."""
    root = tmp_path / "home"
    monkeypatch.setenv("ASTROJEPA_HOME", str(root))
    return root


class Cli:
    """Invoke the real Typer app in-process; ``json`` parses stdout of a ``--json`` call."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0):
        result = self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code} != {expect}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def write_blob_store(path: Path, n: int = 96, size: int = 16, channels: int = 1, seed: int = 0,
                     name: str = "blobs") -> None:
    """A small labelled store of Gaussian blobs: class 0 round, class 1 elongated, class 2 double."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    images, labels = [], []
    for i in range(n):
        label = i % 3
        sx, sy = (2.0, 2.0) if label == 0 else (4.0, 1.2) if label == 1 else (1.5, 1.5)
        blob = np.exp(-(x**2 / (2 * sx**2) + y**2 / (2 * sy**2)))
        if label == 2:
            blob = blob + np.exp(-((x - 4) ** 2 + (y - 3) ** 2) / 4.0)
        image = np.clip(200 * blob + rng.normal(10, 4, blob.shape), 0, 255)
        images.append(np.repeat(image[..., None], channels, axis=-1))
        labels.append(label)
    split = np.array(["train"] * n, dtype=object)
    split[n * 2 // 3 :] = "test"
    with StoreWriter(path, name=name, image_shape=(size, size, channels), dtype=np.uint8,
                     class_names=["round", "elongated", "double"], provenance={"source": "test"}) as writer:
        writer.append(np.stack(images).astype(np.uint8), labels, [f"obj{i}" for i in range(n)], list(split))
        writer.finish()


@pytest.fixture
def blob_store(home) -> str:
    """Name of a 96-image, 16 px, 3-class store under the test's home."""
    write_blob_store(home / "data" / "blobs.h5")
    return "blobs"


@pytest.fixture(scope="session")
def gz1_dir() -> Path:
    if not (GZ1 / "catalog.csv").exists():
        pytest.skip(f"real data not found at {GZ1}")
    return GZ1


TINY_PRETRAIN = ("--arch", "vit-t", "--img-size", "16", "--patch-size", "4", "--batch-size", "16",
                 "--local-views", "2", "--log-every", "1", "--precision", "fp32", "--quiet")
