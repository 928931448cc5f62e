"""Every source through the real CLI into the canonical store, and the training read path."""

from __future__ import annotations

import hashlib
import io
import json
import sys

import h5py
import numpy as np
import pytest
import torch

from astrojepa_cli.data import loader
from astrojepa_cli.data.store import load, read_info, verify
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.errors import UserError
from tests.conftest import write_blob_store
from tests.fileserver import FileServer
from tests.source_files import class_tree, galaxy10_file, jets_file, png


def _store(home, name: str):
    path = home / "data" / f"{name}.h5"
    verify(path)
    return load(path), read_info(path)


# --- Galaxy10 ----------------------------------------------------------------


def test_galaxy10_decals_download_keeps_pixels_labels_and_redshift(cli, home, tmp_path):
    source = galaxy10_file(tmp_path / "Galaxy10_DECals.h5", n=40, size=24, decals=True)
    body = (tmp_path / "Galaxy10_DECals.h5").read_bytes()
    with FileServer() as server:
        server.files["/Galaxy10_DECals.h5"] = body
        fetched = cli.json("fetch-data", "galaxy10-decals", "--url", server.url("/Galaxy10_DECals.h5"),
                           "--md5", hashlib.md5(body).hexdigest(), "--size", "24")
    assert fetched["n_images"] == 40 and fetched["image_shape"] == [24, 24, 3] and fetched["dtype"] == "uint8"
    assert fetched["classes"][:2] == ["Disturbed", "Merging"] and len(fetched["classes"]) == 10
    assert fetched["targets"] == ["redshift"]
    arrays, info = _store(home, "galaxy10-decals")
    np.testing.assert_array_equal(arrays.images, source["images"])
    np.testing.assert_array_equal(arrays.labels, source["ans"])
    np.testing.assert_allclose(arrays.targets["redshift"], source["redshift"])
    assert info.provenance["split"].startswith("stratified") and info.provenance["citation"].startswith("Leung")


def test_a_store_without_a_split_gets_a_seeded_stratified_one(tmp_path):
    labels = np.repeat(np.arange(4), 50)

    def split_of(name: str, seed: int) -> np.ndarray:
        with StoreWriter(tmp_path / name, name=name, image_shape=(2, 2, 1), dtype=np.uint8, class_names=list("abcd"),
                         provenance={}) as writer:
            writer.append(np.zeros((200, 2, 2, 1), np.uint8), labels, [f"i{i}" for i in range(200)])
            assert writer.finish(seed).splits == {"test": 20, "train": 160, "valid": 20}
        return load(tmp_path / name, with_images=False).split

    split = split_of("a.h5", 0)
    for part in ("valid", "test"):
        assert np.bincount(labels[split == part]).tolist() == [5, 5, 5, 5], "class proportions kept"
    np.testing.assert_array_equal(split_of("b.h5", 0), split)
    assert (split_of("c.h5", 1) != split).any()


def test_galaxy10_sdss_from_a_local_file_is_resized_and_flagged(cli, home, tmp_path):
    galaxy10_file(tmp_path / "Galaxy10.h5", n=30, size=69)
    result = cli("fetch-data", "galaxy10-sdss", "--file", tmp_path / "Galaxy10.h5", "--size", "16", "--crop", "0.5",
                 "--json")
    assert "differs from the published galaxy10-sdss file" in result.stderr
    fetched = json.loads(result.stdout)
    assert fetched["n_images"] == 30 and fetched["image_shape"] == [16, 16, 3]
    assert fetched["classes"][9] == "Disk, Face-on, Loose Spiral"
    _, info = _store(home, "galaxy10-sdss")
    assert info.provenance["matches_published"] is False
    assert info.provenance["preprocessing"] == {"crop": 0.5, "size": 16, "channels": [0, 1, 2], "layout": "NHWC",
                                                "dtype": "uint8"}


# --- jets ----------------------------------------------------------------------


def test_jets_keep_float_channels_targets_and_channel_statistics(cli, home, tmp_path):
    source = jets_file(tmp_path / "qg.h5", n=20, size=25)
    fetched = cli.json("fetch-data", "jets", tmp_path / "qg.h5", "--size", "25")
    assert fetched["dtype"] == "float32" and fetched["targets"] == ["m0", "pt"]
    arrays, _ = _store(home, "jets")
    np.testing.assert_array_equal(arrays.images, source["X_jets"])
    np.testing.assert_array_equal(arrays.labels, source["y"].astype(int))
    np.testing.assert_allclose(arrays.targets["pt"], source["pt"], rtol=1e-6)
    np.testing.assert_allclose(arrays.channel_mean, source["X_jets"].mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(arrays.channel_std, source["X_jets"].std(axis=(0, 1, 2)), rtol=1e-4)


def test_jets_float16_and_channel_selection(cli, home, tmp_path):
    source = jets_file(tmp_path / "qg.h5", n=12, size=25)
    fetched = cli.json("fetch-data", "jets", tmp_path / "qg.h5", "--size", "25", "--float16", "--channels", "0,2")
    assert fetched["dtype"] == "float16" and fetched["image_shape"] == [25, 25, 2]
    arrays, _ = _store(home, "jets")
    np.testing.assert_allclose(arrays.images.astype(np.float32), source["X_jets"][..., [0, 2]], rtol=1e-3)


# --- npz and h5 ----------------------------------------------------------------


def test_npz_by_key_with_channels_first_layout(cli, home, tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (18, 3, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "cutouts.npz", X=images, y=np.arange(18) % 3)
    fetched = cli.json("fetch-data", "npz", tmp_path / "cutouts.npz", "--images-key", "X", "--labels-key", "y",
                       "--size", "16")
    assert fetched["n_images"] == 18 and fetched["classes"] == ["class_0", "class_1", "class_2"]
    arrays, _ = _store(home, "npz")
    np.testing.assert_array_equal(arrays.images, images.transpose(0, 2, 3, 1))


def test_h5_nested_key_without_labels_is_unlabelled(cli, home, tmp_path):
    images = np.random.default_rng(2).normal(size=(15, 16, 16)).astype(np.float64)
    with h5py.File(tmp_path / "sim.h5", "w") as handle:
        handle["maps/density"] = images
    fetched = cli.json("fetch-data", "h5", tmp_path / "sim.h5", "--images-key", "maps/density", "--size", "16")
    assert fetched["classes"] == [] and fetched["image_shape"] == [16, 16, 1] and fetched["dtype"] == "float32"
    arrays, _ = _store(home, "h5")
    assert (arrays.labels == -1).all()
    np.testing.assert_allclose(arrays.images[..., 0], images, rtol=1e-6)


# --- Hugging Face ------------------------------------------------------------------


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return datasets


def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_hf_parquet(datasets, folder, sizes: dict[str, int]) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    features = datasets.Features({"img": datasets.Image(), "morphology": datasets.ClassLabel(names=["e", "s", "m"])})
    written = {}
    for split, n in sizes.items():
        pixels = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(n)]
        rows = {"img": [{"bytes": _png_bytes(p), "path": None} for p in pixels], "morphology": [i % 3 for i in range(n)]}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
        written[split] = pixels
    return written


def test_hf_local_parquet_keeps_official_splits_and_class_names(cli, home, tmp_path, hf_offline):
    folder = tmp_path / "galaxies" / "data"
    folder.mkdir(parents=True)
    written = _write_hf_parquet(hf_offline, folder, {"train": 12, "validation": 3, "test": 6})
    fetched = cli.json("fetch-data", f"hf:{tmp_path / 'galaxies'}", "--size", "20")
    assert fetched["name"] == "hf-galaxies" and fetched["classes"] == ["e", "s", "m"]
    assert fetched["splits"] == {"train": 12, "valid": 3, "test": 6}
    arrays, info = _store(home, "hf-galaxies")
    assert info.provenance["columns"] == {"image": "img", "label": "morphology"}
    by_id = dict(zip(arrays.ids, arrays.images))
    np.testing.assert_array_equal(by_id["validation-1"], written["validation"][1])
    np.testing.assert_array_equal(arrays.labels[arrays.split == "test"], np.arange(6) % 3)


def test_hf_one_split_with_explicit_columns(cli, home, tmp_path, hf_offline):
    _write_hf_parquet(hf_offline, tmp_path, {"train": 30})
    fetched = cli.json("fetch-data", f"hf:{tmp_path / 'train-00000-of-00001.parquet'}", "--split", "train",
                       "--image-column", "img", "--label-column", "morphology", "--size", "16", "--name", "gal")
    assert fetched["n_images"] == 30 and fetched["image_shape"] == [16, 16, 3]
    assert set(fetched["splits"]) == {"train", "valid", "test"}, "one split: a stratified split is made"
    result = cli("fetch-data", f"hf:{tmp_path / 'train-00000-of-00001.parquet'}", "--image-column", "nope",
                 expect=2)
    assert "no image column 'nope'" in result.stderr


def test_hf_without_datasets_library_says_how_to_install(cli, home, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    result = cli("fetch-data", "hf:user/galaxies", expect=2)
    assert "pip install datasets pyarrow" in result.stderr


# --- folders ---------------------------------------------------------------------


def test_class_folder_tree_and_catalog(cli, home, tmp_path):
    class_tree(tmp_path / "tree", per_class=6, size=20)
    fetched = cli.json("fetch-data", "folder", tmp_path / "tree", "--size", "20", "--name", "tree")
    assert fetched["n_images"] == 12 and fetched["classes"] == ["elliptical", "spiral"]
    catalog = tmp_path / "cat"
    pixels = [png(catalog / "img" / f"g{i}.png", 20, seed=i) for i in range(6)]
    (catalog / "catalog.csv").write_text("file,label,split,objid\n" + "".join(
        f"img/g{i}.png,{'spiral' if i % 2 else 'elliptical'},{'test' if i < 2 else 'train'},obj{i}\n" for i in range(6)))
    fetched = cli.json("fetch-data", "folder", catalog, "--size", "20", "--name", "cat")
    assert fetched["splits"] == {"test": 2, "train": 4} and fetched["classes"] == ["elliptical", "spiral"]
    arrays, _ = _store(home, "cat")
    np.testing.assert_array_equal(arrays.images[list(arrays.ids).index("obj3")], pixels[3])


def test_fits_folder_is_read_as_float(cli, home, tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    rng = np.random.default_rng(4)
    cubes = {}
    for name in ("qso", "star"):
        (tmp_path / "fits" / name).mkdir(parents=True)
        for i in range(4):
            cube = rng.normal(size=(2, 18, 18)).astype(np.float32)  # two bands, channels first as in FITS
            fits.PrimaryHDU(cube).writeto(tmp_path / "fits" / name / f"{i}.fits")
            cubes[f"{name}/{i}"] = cube
    fetched = cli.json("fetch-data", "folder", tmp_path / "fits", "--size", "18")
    assert fetched["dtype"] == "float32" and fetched["image_shape"] == [18, 18, 2]
    arrays, _ = _store(home, "folder")
    np.testing.assert_allclose(arrays.images[list(arrays.ids).index("star/2")], cubes["star/2"].transpose(1, 2, 0))


def test_fits_without_astropy_is_a_clear_error(cli, home, tmp_path, monkeypatch):
    (tmp_path / "fits" / "a").mkdir(parents=True)
    (tmp_path / "fits" / "a" / "x.fits").write_bytes(b"SIMPLE  =                    T")
    monkeypatch.setitem(sys.modules, "astropy", None)
    result = cli("fetch-data", "folder", tmp_path / "fits", expect=2)
    assert "needs astropy" in result.stderr


# --- the read path ---------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path):
    path = tmp_path / "blobs.h5"
    write_blob_store(path, n=120, size=16, channels=3)
    return path


def test_chunked_read_path_serves_the_same_batches(blobs):
    rows = np.arange(0, 120, 3)
    resident = loader.DeviceImages(blobs, "cpu", rows)
    image_bytes = 16 * 16 * 3
    chunked = loader.DeviceImages(blobs, "cpu", rows, memory_budget_bytes=16 * image_bytes)
    assert resident.placement == "device" and chunked.placement == "chunked" and len(chunked) == len(rows)
    assert chunked.pixels.window_rows == 8
    order = chunked.shuffled_order(torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(len(rows)))
    for batch in order.split(6):
        torch.testing.assert_close(chunked.batch(batch), resident.batch(batch))
    scattered = torch.tensor([39, 0, 17, 25, 8])
    torch.testing.assert_close(chunked.batch(scattered), resident.batch(scattered))
    np.testing.assert_array_equal(chunked.labels, resident.labels)


def test_stretches_are_applied_at_load_time(blobs):
    all_rows = torch.arange(120)
    plain = loader.DeviceImages(blobs, "cpu").batch(all_rows)
    arrays = load(blobs)
    expected = (torch.from_numpy(arrays.images).permute(0, 3, 1, 2).float() / 255
                - torch.from_numpy(arrays.channel_mean).view(1, -1, 1, 1) / 255) / (
        torch.from_numpy(arrays.channel_std).view(1, -1, 1, 1) / 255)
    torch.testing.assert_close(plain, expected)
    zscored = loader.DeviceImages(blobs, "cpu", stretch="zscore").batch(all_rows)
    torch.testing.assert_close(zscored.mean(dim=(2, 3)), torch.zeros(120, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(zscored.std(dim=(2, 3), unbiased=False), torch.ones(120, 3), atol=1e-3, rtol=0)
    stretched = loader.DeviceImages(blobs, "cpu", stretch="asinh").batch(all_rows)
    assert abs(float(stretched.mean())) < 0.05 and abs(float(stretched.std()) - 1) < 0.05
    for channel in range(3):  # asinh is monotonic: the order of pixel values is kept
        raw, new = plain[:, channel].flatten(), stretched[:, channel].flatten()
        assert (new[raw.argsort()].diff() >= -1e-5).all()
    with pytest.raises(UserError, match="--stretch must be one of"):
        loader.DeviceImages(blobs, "cpu", stretch="log")
