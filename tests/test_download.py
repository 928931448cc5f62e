"""Downloads against a real HTTP server on 127.0.0.1: checksums, resume with Range, faults, progress."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from rich.console import Console

from astrojepa_cli.data import download as download_module
from astrojepa_cli.data.download import ATTEMPTS, Checksums, download
from astrojepa_cli.data.store import read_info, verify
from tests.conftest import write_blob_store
from tests.fileserver import FileServer
from tests.source_files import galaxy10_file

NAME = "/Galaxy10.h5"


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(download_module, "RETRY_DELAY_S", 0.0)


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture
def sdss_bytes(tmp_path, server) -> bytes:
    """A 30-image Galaxy10 SDSS file, served at ``NAME``."""
    galaxy10_file(tmp_path / "Galaxy10.h5", n=30, size=24)
    body = (tmp_path / "Galaxy10.h5").read_bytes()
    server.files[NAME] = body
    return body


def _fetch(cli, server, body: bytes, *extra: str, expect: int = 0):
    args = ["fetch-data", "galaxy10-sdss", "--url", server.url(NAME), "--md5", hashlib.md5(body).hexdigest(),
            "--size", "16", *extra]
    return cli.json(*args) if expect == 0 else cli(*args, expect=expect)


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def _downloaded(home):
    return home / "data" / "downloads" / "Galaxy10.h5"


def test_download_is_verified_imported_and_reused(cli, home, server, sdss_bytes):
    fetched = _fetch(cli, server, sdss_bytes)
    assert fetched["n_images"] == 30 and fetched["classes"][0] == "Disk, Face-on, No Spiral"
    provenance = read_info(home / "data" / "galaxy10-sdss.h5").provenance
    assert provenance["checksums"]["md5"] == hashlib.md5(sdss_bytes).hexdigest()
    assert provenance["checksums"]["sha256"] == hashlib.sha256(sdss_bytes).hexdigest()
    assert provenance["origin"] == server.url(NAME) and provenance["matches_published"] is False
    assert _downloaded(home).read_bytes() == sdss_bytes
    assert not (home / "data" / "downloads" / "Galaxy10.h5.part").exists()
    _fetch(cli, server, sdss_bytes, "--name", "again")
    assert len(server.requests) == 1, "a verified download is reused, not fetched again"


def test_dropped_connection_resumes_with_range(cli, home, server, sdss_bytes):
    server.faults = ["drop"]
    assert _fetch(cli, server, sdss_bytes)["n_images"] == 30
    assert server.requests == [(NAME, None), (NAME, f"bytes={len(sdss_bytes) // 2}-")]
    assert _downloaded(home).read_bytes() == sdss_bytes


def test_partial_file_of_an_earlier_run_is_resumed(cli, home, server, sdss_bytes):
    partial = home / "data" / "downloads" / "Galaxy10.h5.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(sdss_bytes[:1000])
    _fetch(cli, server, sdss_bytes)
    assert server.requests == [(NAME, "bytes=1000-")]
    assert _downloaded(home).read_bytes() == sdss_bytes


def test_server_that_ignores_range_restarts_from_zero(cli, home, server, sdss_bytes):
    server.ranges = False
    server.faults = ["drop"]
    _fetch(cli, server, sdss_bytes)
    assert len(server.requests) == 2
    assert _downloaded(home).read_bytes() == sdss_bytes


def test_404_fails_at_once_with_one_line_and_keeps_earlier_store(cli, home, server):
    write_blob_store(home / "data" / "keep.h5")
    before = verify(home / "data" / "keep.h5").sha256
    result = cli("fetch-data", "galaxy10-sdss", "--url", server.url("/missing.h5"), "--name", "keep", "--force",
                 expect=2)
    assert "HTTP 404" in _one_error_line(result)
    assert len(server.requests) == 1, "a 404 is permanent: no retries"
    assert verify(home / "data" / "keep.h5").sha256 == before


def test_500_is_retried_a_bounded_number_of_times(cli, home, server, sdss_bytes):
    server.faults = [500] * ATTEMPTS
    line = _one_error_line(_fetch(cli, server, sdss_bytes, expect=2))
    assert f"failed {ATTEMPTS} times" in line and "HTTP 500" in line and "rerun" in line
    assert len(server.requests) == ATTEMPTS
    assert not (home / "data" / "galaxy10-sdss.h5").exists()
    server.faults = [500, 500]
    assert _fetch(cli, server, sdss_bytes)["n_images"] == 30, "a transient error is retried"


def test_md5_mismatch_keeps_partial_and_writes_no_store(cli, home, server, sdss_bytes):
    write_blob_store(home / "data" / "galaxy10-sdss.h5", name="galaxy10-sdss")
    before = verify(home / "data" / "galaxy10-sdss.h5").sha256
    result = cli("fetch-data", "galaxy10-sdss", "--url", server.url(NAME), "--md5", "0" * 32, "--force", expect=2)
    line = _one_error_line(result)
    assert "checksum mismatch" in line and "md5 expected " + "0" * 32 in line
    partial = home / "data" / "downloads" / "Galaxy10.h5.part"
    assert partial.read_bytes() == sdss_bytes and not _downloaded(home).exists()
    assert verify(home / "data" / "galaxy10-sdss.h5").sha256 == before


def test_mirror_must_serve_the_published_file(cli, home, server, sdss_bytes):
    result = cli("fetch-data", "galaxy10-sdss", "--url", server.url(NAME), expect=2)
    assert "sha256 expected 969a6b1c" in _one_error_line(result)


def test_progress_bar_shows_bytes_rate_and_eta(monkeypatch, server, sdss_bytes, tmp_path):
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    server.pace_s = 0.1
    monkeypatch.setattr(download_module, "stderr", terminal)
    got = download(server.url(NAME), tmp_path / "g.h5", Checksums(md5=hashlib.md5(sdss_bytes).hexdigest()))
    assert got.sha256 == hashlib.sha256(sdss_bytes).hexdigest()
    shown = terminal.file.getvalue()
    assert re.search(r"\d+(\.\d+)? [kMG]?B/s", shown), shown
    assert re.search(r"\d:\d\d:\d\d|-:--:--", shown), shown
    assert "downloaded and verified g.h5" in shown and "kB" in shown
