"""A folder of cutouts with a catalog, end to end: its extra columns kept, embeddings written as CSV,
FITS and VOTable beside them, the suffix matching the format, ``similar --image`` cropped as the
store was, and ``export`` recording that crop and the real input size."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from astrojepa_cli import runs
from astrojepa_cli.data import store
from astrojepa_cli.runs.timm_export import timm_config
from tests.conftest import TINY_PRETRAIN, Cli
from tests.source_files import catalog_folder, png

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")
N = 24


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory) -> tuple[Cli, Path, Path, str]:
    """24 greyscale 32 px cutouts with a catalog (ra, dec, a text class, one empty ra), imported with
    --crop 0.5 at 16 px, and a tiny run on them."""
    root, folder = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("cutouts")
    catalog_folder(folder, N, 32, "objid,ra,dec,gz1_class",
                   lambda i: f"G{i},{'' if i == 3 else 150 + i / 10},{2 - i / 100},{('elliptical', 'spiral')[i % 2]}")
    cli = Cli()
    cli.json("fetch-data", "folder", folder, "--name", "cutouts", "--size", "16", "--crop", "0.5", "--root", root)
    run = cli.json("pretrain", "--data", "cutouts", *FAST, "--root", root)["run_id"]
    return cli, root, folder, run


def test_catalog_columns_are_kept_in_the_store(cutouts):
    _, root, _, _ = cutouts
    arrays = store.load(root / "data" / "cutouts.h5", with_images=False)
    assert set(arrays.columns) == {"ra", "dec", "gz1_class"}
    row = list(arrays.ids).index("G5")
    assert arrays.columns["ra"][row] == pytest.approx(150.5) and arrays.columns["gz1_class"][row] == "spiral"
    assert np.isnan(arrays.columns["ra"][list(arrays.ids).index("G3")])
    assert store.verify(root / "data" / "cutouts.h5").columns == ["dec", "gz1_class", "ra"]


def _reference(cli: Cli, root: Path, run: str) -> tuple[np.ndarray, dict]:
    tensors = load_file(cli.json("embed", run, "--root", root)["path"])
    return tensors["embeddings"].numpy(), tensors


def test_csv_from_the_suffix_holds_catalog_columns_and_embeddings(cutouts, tmp_path):
    cli, root, _, run = cutouts
    embeddings, tensors = _reference(cli, root, run)
    path = tmp_path / "cutouts.csv"
    assert cli.json("embed", run, "--out", path, "--root", root)["format"] == "csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N and list(rows[0])[:4] == ["id", "split", "label", "label_name"]
    assert {"ra", "dec", "gz1_class"} <= set(rows[0])
    by_id = {row["id"]: row for row in rows}
    assert float(by_id["G5"]["ra"]) == pytest.approx(150.5) and by_id["G3"]["ra"] == ""
    assert by_id["G5"]["gz1_class"] == "spiral" and by_id["G5"]["label_name"] == ""
    matrix = np.array([[float(row[f"e{j}"]) for j in range(embeddings.shape[1])] for row in rows], dtype=np.float32)
    np.testing.assert_array_equal(matrix, embeddings)
    np.testing.assert_array_equal(tensors["columns.ra"].numpy()[[5, 6]], [150.5, 150.6])


@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_fits_and_votable_for_topcat(cutouts, tmp_path, suffix):
    table_module = pytest.importorskip("astropy.table")
    cli, root, _, run = cutouts
    embeddings, _ = _reference(cli, root, run)
    path = tmp_path / f"cutouts{suffix}"
    cli.json("embed", run, "--out", path, "--root", root)
    table = table_module.Table.read(path)
    assert [str(v) for v in table["id"]][:2] == ["G0", "G1"] and str(table["gz1_class"][1]) == "spiral"
    assert float(table["dec"][10]) == pytest.approx(1.9)
    np.testing.assert_allclose(np.stack([np.asarray(table[f"e{j}"]) for j in range(embeddings.shape[1])], axis=1),
                               embeddings)


@pytest.mark.parametrize("args, message", [
    (["--out", "embeddings.csv", "--format", "npy"], "names a csv file but --format is npy"),
    (["--out", "embeddings.txt"], "cannot tell the format"),
    (["--format", "xls"], "--format must be one of"),
])
def test_a_suffix_that_disagrees_with_the_format_is_refused(cutouts, tmp_path, args, message):
    cli, root, _, run = cutouts
    result = cli("embed", run, *[str(tmp_path / a) if a.startswith("embeddings") else a for a in args],
                 "--root", root, expect=2)
    assert result.stderr.startswith("error:") and message in result.stderr and len(result.stderr.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_similar_image_is_cropped_like_the_store_and_keeps_each_mosaic(cutouts):
    cli, root, folder, run = cutouts
    first = cli.json("similar", run, "--image", folder / "g7.png", "--k", "3", "--root", root)
    assert first["neighbours"][0]["id"] == "G7"
    assert first["neighbours"][0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    second = cli.json("similar", run, "--image", folder / "g7.png", "--k", "2", "--root", root)
    assert second["mosaic"] != first["mosaic"] and Path(first["mosaic"]).exists() and Path(second["mosaic"]).exists()


def test_export_records_the_input_size_crop_and_normalisation(cutouts, tmp_path):
    cli, root, _, run = cutouts
    cli.json("export", run, "--out", tmp_path / "timm", "--root", root)
    config = json.loads((tmp_path / "timm" / "config.json").read_text())["pretrained_cfg"]
    assert config["input_size"] == [1, 16, 16] and config["crop_pct"] == 0.5
    arrays = store.load(root / "data" / "cutouts.h5", with_images=False)
    np.testing.assert_allclose(config["mean"], arrays.channel_mean / 255, rtol=1e-6)
    # A CNN has no img_size of its own: it was fed the store's 16 px images, not timm's default 224.
    cnn = timm_config(runs.open_run(run, root), {"model_name": "resnet18", "in_chans": 1}, 512)
    assert cnn["pretrained_cfg"]["input_size"] == [1, 16, 16]


def test_a_plain_folder_of_images_is_imported_unlabelled(cli, home, tmp_path):
    for i in range(5):
        png(tmp_path / "plain" / f"cutout_{i}.png", 20, seed=i)
    fetched = cli.json("fetch-data", "folder", tmp_path / "plain", "--size", "16")
    assert fetched["n_images"] == 5 and fetched["classes"] == []
    arrays = store.load(home / "data" / "folder.h5", with_images=False)
    assert sorted(arrays.ids) == [f"cutout_{i}" for i in range(5)] and (arrays.labels == -1).all()
