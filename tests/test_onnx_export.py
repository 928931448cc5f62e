"""Exports that reproduce the run's embedding: ``export --format onnx`` (normalisation, resize and pooling
inside one model) and the README that ``export --format timm`` writes, each checked against ``embed``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astrojepa_cli.data import store
from tests.conftest import Cli, write_blob_store

onnxruntime = pytest.importorskip("onnxruntime")

# A run whose embedding is as far from the bare network's output as a run gets: the asinh stretch,
# an input size (12 px) other than the store's (16 px), and the last2 pooling.
PRETRAIN = ("--epochs", "1", "--max-steps", "2", "--arch", "vit-t", "--img-size", "12", "--patch-size", "4",
            "--batch-size", "16", "--local-views", "0", "--quiet", "--stretch", "asinh", "--embedding-pool", "last2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Cli, Path, str, np.ndarray, np.ndarray]:
    """The CLI, the home, the run, the store's pixels and the run's embeddings as ``embed`` writes them."""
    root = tmp_path_factory.mktemp("onnx-home")
    write_blob_store(root / "data" / "blobs.h5")
    cli = Cli()
    run = cli.json("pretrain", "--data", "blobs", *PRETRAIN, "--root", root)["run_id"]
    reference = root / "reference.npy"
    assert cli.json("embed", run, "--out", reference, "--root", root)["dim"] == 2 * 192
    return cli, root, run, store.load(root / "data" / "blobs.h5").images, np.load(reference)


def readme_code(folder: Path) -> str:
    [code] = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), flags=re.S)
    return code


def run_plain(code: str, folder: Path, pixels: np.ndarray) -> np.ndarray:
    """Run the README's code in ``folder`` on ``pixels`` in a fresh interpreter, checking that it never
    imports astrojepa; returns what its ``embed`` gives."""
    np.save(folder / "pixels.npy", pixels)
    script = folder / "check.py"
    script.write_text(code + "\nimport sys\n"
                      "np.save('out.npy', embed(np.load('pixels.npy')))\n"
                      "assert not any(name.split('.')[0] in ('astrojepa_cli', 'registry') for name in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    return np.load(folder / "out.npy")


def test_the_onnx_model_computes_the_runs_embedding(trained, tmp_path):
    cli, root, run, pixels, reference = trained
    out = tmp_path / "onnx"
    result = cli.json("export", run, "--format", "onnx", "--out", out, "--root", root)
    assert result["max_abs_difference"] < 1e-4 and result["embedding_pool"] == "last2"
    assert result["input"] == {"name": "images", "shape": ["N", 16, 16, 1], "dtype": "float32"}
    session = onnxruntime.InferenceSession(str(out / "embedding.onnx"), providers=["CPUExecutionProvider"])
    # Every image of the store at once: a batch size other than the one the model was traced with.
    embedded = session.run(["embedding"], {"images": pixels.astype(np.float32)})[0]
    assert embedded.shape == reference.shape == (96, 384)
    np.testing.assert_allclose(embedded, reference, atol=1e-4)
    np.testing.assert_allclose(run_plain(readme_code(out), out, pixels[:5]), reference[:5], atol=1e-4)
    recipe = json.loads((out / "embedding.json").read_text())
    assert (recipe["pool"], recipe["normalisation"]["stretch"], recipe["input"]["encoder_image_size"]) == (
        "last2", "asinh", 12)


def test_the_timm_exports_readme_reproduces_the_runs_embedding(trained, tmp_path):
    cli, root, run, pixels, reference = trained
    out = tmp_path / "timm"
    result = cli.json("export", run, "--out", out, "--root", root)  # timm is the default format
    assert (result["embedding_pool"], result["embedding_dim"]) == ("last2", 384)
    readme = (out / "README.md").read_text()
    assert "last2" in readme and "asinh" in readme and "12 x 12" in readme
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_cfg"]["input_size"] == [1, 12, 12]
    np.testing.assert_allclose(run_plain(readme_code(out), out, pixels), reference, atol=1e-4)


def test_onnx_without_its_packages_names_the_extra(trained, tmp_path):
    _, root, run, _, _ = trained
    launcher = ("import sys; sys.modules['onnxscript'] = None; sys.argv = ['astrojepa', *sys.argv[1:]]; "
                "from astrojepa_cli.launcher import main; main()")
    completed = subprocess.run([sys.executable, "-c", launcher, "export", run, "--format", "onnx", "--out",
                                str(tmp_path / "x"), "--root", str(root)], capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.strip() == "error: --format onnx needs onnxscript: pip install 'astrojepa[onnx]'"
    assert not (tmp_path / "x").exists()
