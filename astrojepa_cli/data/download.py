"""HTTPS downloads that resume, verify and show progress.

The transfer goes to ``<dest>.part``; an interrupted transfer (a dropped
connection, a server error, Ctrl-C) leaves it there, and the next attempt asks
the server for the rest with an HTTP ``Range`` header. Only a file whose
checksums match is renamed to ``dest``; on a mismatch the ``.part`` file is kept
so the user can inspect or delete it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from astrojepa_cli import __version__
from astrojepa_cli.atomic import disk_full_error
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import DownloadError

ATTEMPTS = 5
RETRY_DELAY_S = 1.0
TIMEOUT_S = 60.0
BLOCK = 1 << 20
PERMANENT_HTTP_ERRORS = {400, 401, 403, 404, 410}


@dataclass(frozen=True)
class Checksums:
    """Hex digests of a file; ``None`` where unknown."""

    md5: str | None = None
    sha256: str | None = None

    def mismatches(self, actual: "Checksums") -> list[str]:
        """'md5 expected X, got Y' for each digest that is known here and differs in ``actual``."""
        return [f"{kind} expected {want}, got {got}" for kind, want in asdict(self).items()
                if want is not None and want.lower() != (got := getattr(actual, kind))]

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def file_checksums(path: Path) -> Checksums:
    """MD5 and SHA-256 of ``path``, read in 1 MiB blocks."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            md5.update(block)
            sha256.update(block)
    return Checksums(md5.hexdigest(), sha256.hexdigest())


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, expected: Checksums = Checksums(), progress: bool = True) -> Checksums:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``) and return its checksums.

    An existing ``dest`` that matches ``expected`` is reused without a transfer.
    Raises :class:`DownloadError` on a permanent HTTP error (404...), after
    ``ATTEMPTS`` failed attempts, or when the finished file fails ``expected``.
    """
    dest = Path(dest)
    if dest.exists():
        actual = file_checksums(dest)
        problems = expected.mismatches(actual)
        if problems:
            raise DownloadError(f"{dest} exists but does not match ({'; '.join(problems)}); delete it to download again")
        return actual
    partial = partial_path(dest)
    partial.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _transfer(url, partial, progress)
    actual = file_checksums(partial)
    problems = expected.mismatches(actual)
    if problems:
        raise DownloadError(f"checksum mismatch for {url} ({'; '.join(problems)}); the download is kept at "
                            f"{partial}: delete it to download again")
    os.replace(partial, dest)
    if progress and stderr.is_terminal:  # the bar is transient: leave one line saying what it did
        size, seconds = dest.stat().st_size / 2**20, max(time.perf_counter() - started, 1e-9)
        stderr.print(f"downloaded and verified {dest.name}: {size:.1f} MiB in {seconds:.1f} s "
                     f"({size / seconds:.1f} MiB/s)", highlight=False)
    return actual


def _transfer(url: str, partial: Path, progress: bool) -> None:
    """Append the missing bytes of ``url`` to ``partial``, retrying with backoff."""
    failures = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=stderr, transient=True, disable=not progress) as bar:
        task = bar.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=None)
        while True:
            offset = partial.stat().st_size if partial.exists() else 0
            try:
                if _attempt(url, partial, offset, bar, task):
                    break
                reason = "the connection closed before the end of the file"
            except urllib.error.HTTPError as exc:
                if exc.code in PERMANENT_HTTP_ERRORS:
                    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; check --url") from None
                reason = f"HTTP {exc.code} {exc.reason}"
            except urllib.error.URLError as exc:
                reason = str(exc.reason)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            failures += 1
            if failures >= ATTEMPTS:
                kept = partial.stat().st_size if partial.exists() else 0
                raise DownloadError(f"download of {url} failed {failures} times (last: {reason}); {kept} bytes kept "
                                    f"in {partial}, rerun the same command to resume")
            time.sleep(RETRY_DELAY_S * 2 ** (failures - 1))


def _attempt(url: str, partial: Path, offset: int, bar: Progress, task) -> bool:
    """One request for bytes ``offset..``; True once ``partial`` holds the whole file."""
    headers = {"User-Agent": f"astrojepa/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the partial file is already complete
            return True
        raise
    with response:
        if response.status == 206:
            mode = "ab"
        else:  # the server ignored the Range header: start again from byte 0
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar.update(task, total=total, completed=offset)
        received = offset
        with open(partial, mode) as out:
            while block := response.read1(BLOCK):
                try:
                    out.write(block)
                except OSError as exc:
                    raise (disk_full_error(exc, partial) or exc) from None
                received += len(block)
                bar.update(task, completed=received)
    return total is None or received >= total
