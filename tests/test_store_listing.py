"""``fetch-data list``: every valid store under ROOT/data with its size; a file that is not a store is
skipped with one warning line, and the listing goes on."""

from __future__ import annotations

import json

from astrojepa_cli.data.store import list_stores
from tests.conftest import write_blob_store


def test_list_shows_every_store_and_warns_about_a_broken_file(cli, home):
    write_blob_store(home / "data" / "blobs.h5")
    write_blob_store(home / "data" / "more.h5", n=30, size=8, channels=3, name="more")
    (home / "data" / "broken.h5").write_bytes(b"not an HDF5 file")

    result = cli("fetch-data", "list", "--json")
    stores = {row["name"]: row for row in json.loads(result.stdout)["stores"]}
    assert sorted(stores) == ["blobs", "more"]
    assert stores["more"]["n_images"] == 30 and stores["more"]["image_shape"] == [8, 8, 3]
    assert stores["blobs"]["bytes"] == (home / "data" / "blobs.h5").stat().st_size
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and "broken.h5" in warnings[0]

    table = cli("fetch-data", "list").stderr
    assert "blobs" in table and "more" in table and "8×8×3" in table


def test_list_stores_returns_each_store_with_its_size(home):
    assert list_stores(home) == []
    write_blob_store(home / "data" / "blobs.h5")
    [(info, size)] = list_stores(home)
    assert info.name == "blobs" and info.n_images == 96 and size == (home / "data" / "blobs.h5").stat().st_size
