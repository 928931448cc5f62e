"""The bad-input catalogue, through the real CLI: one ``error:`` line, exit 2, earlier stores intact.

Download faults (404, 500, a dropped connection, an md5 mismatch) are in test_download.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from astrojepa_cli.data.store import load, read_info, verify
from tests.conftest import write_blob_store
from tests.source_files import class_tree, jets_file, png


@pytest.fixture
def keep(home) -> str:
    """An earlier store called 'keep' that every failing import below tries to replace; returns its hash."""
    write_blob_store(home / "data" / "keep.h5", name="keep")
    return verify(home / "data" / "keep.h5").sha256


def _assert_rejected(stderr: str, message: str, home: Path, keep: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert message in lines[0], lines[0]
    assert verify(home / "data" / "keep.h5").sha256 == keep, "the earlier store must be untouched"
    leftovers = sorted(p.name for p in (home / "data").iterdir() if p.is_file())
    assert leftovers == ["keep.h5"], f"half-written files left behind: {leftovers}"


def _truncated_jets(tmp: Path) -> list:
    jets_file(tmp / "qg.h5", n=40)
    data = (tmp / "qg.h5").read_bytes()
    (tmp / "qg.h5").write_bytes(data[: len(data) // 2])
    return ["jets", tmp / "qg.h5"]


def _random_bytes_h5(tmp: Path) -> list:
    (tmp / "x.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    return ["h5", tmp / "x.h5"]


def _nan_jets(tmp: Path) -> list:
    jets_file(tmp / "qg.h5", n=10)
    with h5py.File(tmp / "qg.h5", "r+") as handle:
        handle["X_jets"][7, 3, 4, 1] = np.nan
    return ["jets", tmp / "qg.h5"]


def _inf_h5(tmp: Path) -> list:
    images = np.ones((6, 16, 16), dtype=np.float32)
    images[2, 0, 0] = np.inf
    with h5py.File(tmp / "x.h5", "w") as handle:
        handle["images"] = images
    return ["h5", tmp / "x.h5"]


def _count_mismatch(tmp: Path) -> list:
    with h5py.File(tmp / "x.h5", "w") as handle:
        handle["images"] = np.zeros((10, 16, 16, 1), dtype=np.uint8)
        handle["labels"] = np.zeros(8, dtype=np.int64)
    return ["h5", tmp / "x.h5"]


def _fractional_labels(tmp: Path) -> list:
    np.savez(tmp / "x.npz", images=np.zeros((4, 16, 16), dtype=np.uint8), labels=np.array([0, 1, 0.5, 1]))
    return ["npz", tmp / "x.npz"]


def _pickled_npz(tmp: Path) -> list:
    np.savez(tmp / "x.npz", images=np.array([np.zeros((4, 4)), "not an image"], dtype=object))
    return ["npz", tmp / "x.npz"]


def _galaxy10_without_labels(tmp: Path) -> list:
    with h5py.File(tmp / "g.h5", "w") as handle:
        handle["images"] = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    return ["galaxy10-decals", "--file", tmp / "g.h5"]


def _catalog_row_missing_file(tmp: Path) -> list:
    png(tmp / "cat" / "a.png", 16)
    (tmp / "cat" / "catalog.csv").write_text("file,label\na.png,0\nmissing.png,1\n")
    return ["folder", tmp / "cat"]


def _empty_folder(tmp: Path) -> list:
    (tmp / "empty").mkdir()
    return ["folder", tmp / "empty"]


def _class_folders_without_images(tmp: Path) -> list:
    (tmp / "tree" / "spiral").mkdir(parents=True)
    (tmp / "tree" / "spiral" / "notes.txt").write_text("no images here")
    return ["folder", tmp / "tree"]


def _undecodable_under_strict(tmp: Path) -> list:
    class_tree(tmp / "tree", per_class=3)
    (tmp / "tree" / "spiral" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return ["folder", tmp / "tree", "--strict"]


def _channels_out_of_range(tmp: Path) -> list:
    jets_file(tmp / "qg.h5", n=4)
    return ["jets", tmp / "qg.h5", "--channels", "0,5"]


def _option_for_another_source(tmp: Path) -> list:
    class_tree(tmp / "tree", per_class=2)
    return ["folder", tmp / "tree", "--md5", "0" * 32]


CASES = {
    "missing file": (lambda tmp: ["jets", tmp / "nope.h5"], "file not found"),
    "missing --file": (lambda tmp: ["galaxy10-sdss", "--file", tmp / "nope.h5"], "file not found"),
    "missing folder": (lambda tmp: ["folder", tmp / "nope"], "folder not found"),
    "truncated HDF5": (_truncated_jets, "is not a readable HDF5 file (truncated or corrupt?)"),
    "corrupt HDF5": (_random_bytes_h5, "is not a readable HDF5 file (truncated or corrupt?)"),
    "NaN pixels": (_nan_jets, "image 7 has NaN or Inf pixels"),
    "Inf pixels": (_inf_h5, "image 2 has NaN or Inf pixels"),
    "label/image count mismatch": (_count_mismatch, "10 images but 8 labels"),
    "fractional labels": (_fractional_labels, "labels must be whole numbers"),
    "object arrays need pickle": (_pickled_npz, "allow_pickle=False"),
    "missing dataset key": (_galaxy10_without_labels, "has no dataset 'ans'"),
    "catalog row whose file is missing": (_catalog_row_missing_file, "line 3: image file not found"),
    "empty folder": (_empty_folder, "has no catalog and no class sub-folders"),
    "class folders without images": (_class_folders_without_images, "no images"),
    "undecodable image under --strict": (_undecodable_under_strict, "cannot decode image broken.png"),
    "channel out of range": (_channels_out_of_range, "--channels 0,5 out of range"),
    "option of another source": (_option_for_another_source, "source 'folder' does not take --md5"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_rejected_without_damage(cli, home, keep, tmp_path, case):
    build, message = CASES[case]
    result = cli("fetch-data", *build(tmp_path), "--name", "keep", "--force", "--size", "16", expect=2)
    _assert_rejected(result.stderr, message, home, keep)


def test_unknown_source_lists_the_valid_ones(cli, home, keep):
    result = cli("fetch-data", "galaxy10-decal", expect=2)
    _assert_rejected(result.stderr, "Did you mean 'galaxy10-decals'?", home, keep)
    for name in ("first-radio", "folder", "galaxy10-sdss", "jets", "npz", "h5", "hf:<repo_id>"):
        assert name in result.stderr


def test_mixed_image_sizes_are_resized_with_a_warning(cli, home, tmp_path):
    for i, size in enumerate((20, 32, (40, 24))):
        png(tmp_path / "mixed" / "a" / f"{i}.png", size, seed=i)
    result = cli("fetch-data", "folder", tmp_path / "mixed", "--size", "16", "--json")
    assert "warning: images had 3 different sizes; all were cropped and resized to 16px" in result.stderr
    assert json.loads(result.stdout)["image_shape"] == [16, 16, 3]
    assert load(home / "data" / "folder.h5").images.shape == (3, 16, 16, 3)


def test_undecodable_image_is_skipped_and_reported(cli, home, tmp_path):
    class_tree(tmp_path / "tree", per_class=3)
    (tmp_path / "tree" / "spiral" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = cli("fetch-data", "folder", tmp_path / "tree", "--size", "16", "--json")
    assert "warning: skipped 1 undecodable image(s): broken.png" in result.stderr
    assert json.loads(result.stdout)["n_images"] == 6
    assert read_info(home / "data" / "folder.h5").provenance["skipped"][0].startswith("broken.png")


def test_full_disk_is_one_line_and_leaves_the_earlier_store(home, keep, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes writes fail as on a full disk, in a child process."""
    np.savez(tmp_path / "big.npz", images=np.random.default_rng(0).integers(0, 256, (300, 64, 64, 3), dtype=np.uint8))
    limit = 1_000_000

    def cap_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run(
        [sys.executable, "-m", "astrojepa_cli", "fetch-data", "npz", str(tmp_path / "big.npz"), "--size", "64",
         "--name", "keep", "--force"],
        preexec_fn=cap_file_size, capture_output=True, text=True, timeout=120,
        env={**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1", "COLUMNS": "400"},
    )
    assert child.returncode == 2, child.stderr
    _assert_rejected(child.stderr, "disk full while writing", home, keep)
