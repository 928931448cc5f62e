"""``embed`` (safetensors, npy, parquet, stdout, pooling, chunking) and ``export --format timm``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from astrojepa_cli import runs
from astrojepa_cli.data import store
from astrojepa_cli.evaluate import features as feature_extraction
from astrojepa_cli.evaluate.explore.embedding_files import write_npy
from registry.encoders import Encoder
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Cli, Path, str]:
    root = tmp_path_factory.mktemp("embed-home")
    write_blob_store(root / "data" / "blobs.h5")
    cli = Cli()
    run = cli.json("pretrain", "--data", "blobs", *FAST, "--root", root)["run_id"]
    return cli, root, run


@pytest.fixture(scope="module")
def reference(trained) -> dict:
    """The default safetensors output, which every other format must agree with."""
    cli, root, run = trained
    result = cli.json("embed", run, "--root", root)
    assert result["format"] == "safetensors" and (result["n"], result["dim"]) == (96, 192)
    tensors = load_file(result["path"])
    return {"embeddings": tensors["embeddings"].numpy(), "labels": tensors["labels"].numpy()}


def test_npy_to_stdout_matches_safetensors(trained, reference):
    cli, root, run = trained
    result = cli("embed", run, "--format", "npy", "--out", "-", "--root", root)
    embeddings = np.load(io.BytesIO(result.stdout_bytes))
    assert embeddings.dtype == np.float32
    np.testing.assert_array_equal(embeddings, reference["embeddings"])


def test_parquet_file_and_stdout_hold_ids_labels_and_embedding_columns(trained, reference, tmp_path):
    cli, root, run = trained
    path = tmp_path / "blobs.parquet"
    result = cli.json("embed", run, "--out", path, "--root", root)  # format from the suffix
    assert result["format"] == "parquet" and Path(result["path"]) == path
    table = pq.read_table(path)
    assert table.column_names[:4] == ["id", "split", "label", "label_name"]
    assert table.column("id").to_pylist()[:2] == ["obj0", "obj1"]
    np.testing.assert_array_equal(table.column("label").to_numpy(), reference["labels"])
    assert table.column("label_name").to_pylist()[:3] == ["round", "elongated", "double"]
    matrix = np.stack([table.column(f"e{j}").to_numpy() for j in range(192)], axis=1)
    np.testing.assert_array_equal(matrix, reference["embeddings"])
    assert table.schema.metadata[b"run_id"].decode() == run

    piped = cli("embed", run, "--format", "parquet", "--out", "-", "--root", root)
    assert pq.read_table(io.BytesIO(piped.stdout_bytes)).equals(table)


def test_embeddings_stream_in_bounded_chunks(trained, reference):
    _, root, run = trained
    encoder = runs.load_encoder(runs.open_run(run, root))
    store_path = root / "data" / "blobs.h5"
    chunks = list(feature_extraction.iter_embeddings(encoder, store_path, chunk=40))
    assert [len(c) for c in chunks] == [40, 40, 16]
    np.testing.assert_allclose(np.concatenate(chunks), reference["embeddings"], atol=1e-5)
    stream = io.BytesIO()
    write_npy(iter(chunks), 96, 192, stream)
    np.testing.assert_array_equal(np.load(io.BytesIO(stream.getvalue())), np.concatenate(chunks))


def test_cls_pooling_needs_a_class_token(trained, tmp_path):
    cli, root, run = trained
    result = cli("embed", run, "--pool", "cls", "--root", root, expect=2)
    assert "no class token" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with_token = Encoder("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=1, depth=1, class_token=True,
                         global_pool="token")
    store_path = root / "data" / "blobs.h5"
    cls = feature_extraction.extract(with_token, store_path, pool="cls").embeddings
    mean = feature_extraction.extract(with_token, store_path, pool="mean").embeddings
    assert cls.shape == mean.shape == (96, 192)
    # With global_pool='token' the encoder's own embedding is the class token.
    np.testing.assert_allclose(cls, mean, atol=1e-5)


@pytest.mark.parametrize("args", [["--format", "xls"], ["--out", "-", "--json"], ["--pool", "max"]])
def test_bad_embed_requests_are_one_line_errors(trained, args):
    cli, root, run = trained
    result = cli("embed", run, *args, "--root", root, expect=2)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


PLAIN_TIMM = """
import json, sys
import numpy, timm, torch
folder, pixels_path, out_path = sys.argv[1:]
config = json.load(open(folder + "/config.json"))
by_overlay = timm.create_model(config["architecture"], pretrained=True,
                               pretrained_cfg_overlay=dict(file=folder + "/model.safetensors"), **config["model_args"])
by_folder = timm.create_model("local-dir:" + folder, pretrained=True)
cfg = by_folder.pretrained_cfg
pixels = torch.from_numpy(numpy.load(pixels_path)).permute(0, 3, 1, 2).float() / 255.0
images = (pixels - torch.tensor(cfg["mean"]).view(1, -1, 1, 1)) / torch.tensor(cfg["std"]).view(1, -1, 1, 1)
with torch.no_grad():
    outputs = [model.eval()(images).numpy() for model in (by_overlay, by_folder)]
numpy.save(out_path, numpy.stack(outputs))
assert not any(name.split(".")[0] in ("astrojepa_cli", "registry") for name in sys.modules), "astrojepa was imported"
"""


def test_timm_export_loads_in_plain_timm_with_identical_embeddings(trained, reference, tmp_path):
    cli, root, run = trained
    out = tmp_path / "export"
    result = cli.json("export", run, "--format", "timm", "--out", out, "--root", root)
    assert (out / "model.safetensors").exists() and json.loads((out / "config.json").read_text())["num_classes"] == 0
    assert result["architecture"] == "vit_tiny_patch16_224"
    np.save(tmp_path / "pixels.npy", store.load(root / "data" / "blobs.h5").images)
    script = tmp_path / "plain_timm.py"
    script.write_text(PLAIN_TIMM)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, str(script), str(out), str(tmp_path / "pixels.npy"),
                                str(tmp_path / "out.npy")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    by_overlay, by_folder = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(by_overlay, reference["embeddings"], atol=1e-4)
    np.testing.assert_allclose(by_folder, reference["embeddings"], atol=1e-4)


def test_export_rejects_unknown_format(trained, tmp_path):
    cli, root, run = trained
    cli("export", run, "--format", "tflite", "--out", tmp_path / "x", "--root", root, expect=2)


def test_embeddings_use_the_runs_intensity_stretch(trained):
    cli, root, _ = trained
    run = cli.json("pretrain", "--data", "blobs", *FAST, "--stretch", "zscore", "--root", root)["run_id"]
    embedded = load_file(cli.json("embed", run, "--root", root)["path"])["embeddings"].numpy()
    encoder = runs.load_encoder(runs.open_run(run, root))
    store_path = root / "data" / "blobs.h5"
    as_trained = feature_extraction.extract(encoder, store_path, stretch="zscore").embeddings
    unstretched = feature_extraction.extract(encoder, store_path, stretch="none").embeddings
    np.testing.assert_allclose(embedded, as_trained, atol=1e-5)
    assert not np.allclose(embedded, unstretched, atol=1e-3)


def test_the_runs_embedding_pool_is_what_every_evaluating_command_uses(trained, tmp_path):
    cli, root, _ = trained
    run = cli.json("pretrain", "--data", "blobs", *FAST, "--embedding-pool", "last2", "--root", root)["run_id"]
    encoder = runs.load_encoder(runs.open_run(run, root))
    store_path = root / "data" / "blobs.h5"
    last2 = feature_extraction.extract(encoder, store_path, pool="last2").embeddings
    assert last2.shape == (96, 2 * 192)  # the last two ViT blocks' token means, concatenated

    embedded = cli.json("embed", run, "--root", root)
    assert (embedded["pool"], embedded["dim"]) == ("last2", 384)
    np.testing.assert_allclose(load_file(embedded["path"])["embeddings"].numpy(), last2, atol=1e-5)
    assert cli.json("embed", run, "--pool", "mean", "--out", tmp_path / "mean.npy", "--root", root)["dim"] == 192
    assert np.load(tmp_path / "mean.npy").shape == (96, 192)

    assert cli.json("probe", run, "--root", root)["protocol"] == "linear-last2"
    assert cli.json("probe", run, "--pool", "mean", "--root", root)["protocol"] == "linear"

    query = str(store.load(store_path, with_images=False).ids[0])
    similarities = {pool: [n["similarity"] for n in cli.json("similar", run, "--id", query, "--k", "5",
                                                              *pool_flag, "--root", root)["neighbours"]]
                    for pool, pool_flag in (("run's", ()), ("last2", ("--pool", "last2")), ("mean", ("--pool", "mean")))}
    assert similarities["run's"] == similarities["last2"] != similarities["mean"]

    cli.json("export", run, "--format", "timm", "--out", tmp_path / "export", "--root", root)
    assert json.loads((tmp_path / "export" / "config.json").read_text())["astrojepa"]["embedding_pool"] == "last2"


def test_an_embedding_pool_the_commands_cannot_use_is_refused(trained):
    cli, root, run = trained
    result = cli("pretrain", "--data", "blobs", *FAST, "--embedding-pool", "cls", "--root", root, expect=2)
    assert result.stderr.startswith("error: --embedding-pool must be one of mean, last2")
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("probe", run, "--pool", "median", "--root", root, expect=2)
    assert result.stderr.strip() == "error: --pool must be one of mean, cls, last2 (got median)"
