"""Cached embeddings of a run's encoder: one folder per (weights, store, feature options), inside the run.

::

    runs/<run-id>/cache/
        file-hashes.json                  sha256 of encoder.safetensors, trusted while its size, mtime and inode hold
        embeddings/<key>/embeddings.npy   (N, D) float32, store order
        embeddings/<key>/entry.json       what the key was made of, N, D, the array's sha256, dataset, time

The key is a hash of the encoder file's sha256, the store's recorded content sha256 and every option
that changes the features (pooling, test-time views, stretch, input size), so new weights or a
re-imported store give a new key and an old entry is never read for them. An entry is written into a
temporary folder and renamed into place whole: two processes filling the same entry cannot mix their
files (the second rename fails and its copy is dropped), and a reader sees a complete entry or none.
An entry that fails its checks (a missing file, wrong shape, hash mismatch) is removed with a warning
and recomputed. The cache stores; deciding what to cache is the caller's job
(:func:`astrojepa_cli.evaluate.features.extract`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from astrojepa_cli.atomic import write_json
from astrojepa_cli.runs.store import ENCODER_FILE, Run

CACHE_DIR = "cache"
ENTRIES_DIR = "embeddings"
HASHES_FILE = "file-hashes.json"
ARRAY_FILE = "embeddings.npy"
ENTRY_FILE = "entry.json"
# Part of every key: raise it when the embedding code changes what the same options compute.
FORMAT = 1
HASH_BLOCK = 1 << 20
log = logging.getLogger("astrojepa")


def file_signature(path: Path) -> dict:
    """What changes whenever a file is rewritten: its size, mtime and inode."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def file_sha256(path: Path, memo_path: Path) -> str:
    """The sha256 of ``path``, read from ``memo_path`` while the file's size, mtime and inode are unchanged.

    Rewriting a weights file (atomically, as astrojepa does) changes its inode and mtime, so a stale
    hash is never returned; an unwritable memo only costs a re-hash next time.
    """
    signature = file_signature(path)
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    remembered = memo.get(path.name) if isinstance(memo, dict) else None
    if isinstance(remembered, dict) and {k: remembered.get(k) for k in signature} == signature:
        return str(remembered["sha256"])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    memo = memo if isinstance(memo, dict) else {}
    memo[path.name] = {**signature, "sha256": digest.hexdigest()}
    with contextlib.suppress(OSError):
        write_json(memo_path, memo)
    return digest.hexdigest()


def key_of(parts: dict) -> str:
    """The folder name of an entry: a hash of its key parts in canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _remove(entry: Path) -> None:
    """Delete an entry folder; renamed away first, so no reader sees it half-deleted."""
    doomed = entry.with_name(f".deleting-{entry.name}-{secrets.token_hex(3)}")
    with contextlib.suppress(FileNotFoundError):
        entry.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


@dataclass
class EntryWriter:
    """Fills one entry chunk by chunk (bounded memory: the array is a memory map); :meth:`commit` renames it in.

    A write error (a read-only or full disk) stops the caching with a warning, never the command.
    """

    folder: Path
    parts: dict
    n: int
    description: dict
    rows: int = 0
    failed: bool = False
    _tmp: Path | None = None
    _array: np.ndarray | None = None
    _digest: Any = field(default_factory=hashlib.sha256)

    def add(self, chunk: np.ndarray) -> None:
        if self.failed:
            return
        try:
            if self._array is None:
                self._tmp = self.folder / f".writing-{key_of(self.parts)}-{secrets.token_hex(3)}"
                self._tmp.mkdir(parents=True)
                self._array = np.lib.format.open_memmap(self._tmp / ARRAY_FILE, mode="w+", dtype=np.float32,
                                                        shape=(self.n, chunk.shape[1]))
            chunk = np.ascontiguousarray(chunk, dtype=np.float32)
            self._array[self.rows : self.rows + len(chunk)] = chunk
        except OSError as exc:
            self._fail(exc)
            return
        self._digest.update(chunk.data)
        self.rows += len(chunk)

    def commit(self) -> None:
        """Put the entry in place if every row was written; another process's complete entry wins a tie."""
        if self.failed or self._array is None or self.rows != self.n:
            return self.discard()
        dim = self._array.shape[1]
        try:
            self._array.flush()
            self._array = None
            with open(self._tmp / ARRAY_FILE, "rb+") as handle:
                os.fsync(handle.fileno())
            write_json(self._tmp / ENTRY_FILE, {"parts": self.parts, "n": self.n, "dim": dim, "dtype": "float32",
                                                "sha256": self._digest.hexdigest(), **self.description,
                                                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        except OSError as exc:
            return self._fail(exc)
        try:
            self._tmp.rename(self.folder / key_of(self.parts))
        except OSError:  # the same entry, renamed into place by another process meanwhile
            self.discard()

    def discard(self) -> None:
        self._array = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        self.discard()
        log.warning("embeddings not cached in %s: %s", self.folder, exc)


@dataclass(frozen=True)
class EmbeddingCache:
    """The embedding cache of one encoder file (identified by its sha256), kept in ``folder``."""

    folder: Path
    weights_sha256: str
    weights_file: Path | None = None
    weights_signature: dict | None = None

    @classmethod
    def of_run(cls, run: Run) -> EmbeddingCache | None:
        """The cache of the run's encoder, ``encoder.safetensors``; None while the run has none (loading
        the encoder then reports it). Make it before loading the encoder: an entry is not kept if the
        file changed since (a run still training rewrites it), so it never holds another encoder's features."""
        weights = run.dir / ENCODER_FILE
        if not weights.is_file():
            return None
        signature = file_signature(weights)
        return cls(run.dir / CACHE_DIR / ENTRIES_DIR, file_sha256(weights, run.dir / CACHE_DIR / HASHES_FILE),
                   weights, signature)

    def parts(self, options: dict) -> dict:
        """The key parts: the weights, the format and ``options`` (the store's sha256 and the feature options)."""
        return {"format": FORMAT, "weights_sha256": self.weights_sha256, **options}

    def load(self, options: dict, n: int) -> np.ndarray | None:
        """The cached (n, D) embeddings for ``options``, or None when there are none or they fail their checks."""
        parts = self.parts(options)
        entry = self.folder / key_of(parts)
        if not entry.is_dir():
            return None
        try:
            record = json.loads((entry / ENTRY_FILE).read_text())
            array = np.load(entry / ARRAY_FILE, allow_pickle=False)
            if record["parts"] != parts:
                raise ValueError("its key parts differ")
            if array.dtype != np.float32 or array.shape != (n, record["dim"]):
                raise ValueError(f"shape {array.shape}, expected ({n}, {record['dim']})")
            if _array_sha256(array) != record["sha256"]:
                raise ValueError("its content hash does not match")
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            log.warning("cached embeddings %s are unreadable (%s); recomputing them", entry, exc)
            with contextlib.suppress(OSError):
                _remove(entry)
            return None
        return array

    @contextlib.contextmanager
    def writing(self, options: dict, n: int, description: dict) -> Iterator[EntryWriter]:
        """An :class:`EntryWriter` for ``options``, committed when the block ends normally, dropped otherwise.

        Entries that can never be read again are removed first: those of other weights (the run's
        encoder file only moves forward) and those of an older content or an older write of the same store file.
        """
        for record in _records(self.folder):
            replaced_store = (record.get("store") == description.get("store")
                              and any(record["parts"].get(part) != options.get(part)
                                      for part in ("store_sha256", "store_file")))
            if record["parts"].get("weights_sha256") != self.weights_sha256 or replaced_store:
                with contextlib.suppress(OSError):
                    _remove(self.folder / record["key"])
        writer = EntryWriter(self.folder, self.parts(options), n, description)
        try:
            yield writer
        except BaseException:
            writer.discard()
            raise
        if self.weights_file is not None and file_signature(self.weights_file) != self.weights_signature:
            writer.discard()  # rewritten while embedding: the features may be of either version
            return
        writer.commit()


def _records(folder: Path) -> list[dict]:
    found = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            record = json.loads((entry / ENTRY_FILE).read_text())
        except (OSError, ValueError):
            record = {"parts": {}, "unreadable": True}
        size = sum(path.stat().st_size for path in entry.iterdir() if path.is_file())
        found.append({"key": entry.name, **record, "bytes": size})
    return found


def entries(run_dir: Path) -> list[dict]:
    """The run's cached embeddings: each entry's key, record (key parts, N, D, dataset, time) and size in bytes."""
    return _records(run_dir / CACHE_DIR / ENTRIES_DIR)


def clear(run_dir: Path) -> list[str]:
    """Delete every cached embedding of the run (and unfinished writes); the keys of the entries removed."""
    folder = run_dir / CACHE_DIR / ENTRIES_DIR
    removed = [record["key"] for record in _records(folder)]
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.name.startswith("."):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            _remove(entry)
    return removed
