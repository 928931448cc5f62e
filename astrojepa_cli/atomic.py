"""Atomic writes: write to a temporary sibling, fsync, then rename over the target.

A reader never sees a half-written file, and a failed write (a full disk, a
kill) leaves the previous version in place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from astrojepa_cli.errors import UserError


def temporary_sibling(target: Path) -> Path:
    """A new empty temporary file in ``target``'s folder (same filesystem, so rename is atomic)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    return Path(tmp_name)


def commit(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and rename it over ``target``."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def disk_full_error(exc: BaseException, target: Path) -> UserError | None:
    """The one-line error for a full disk, or None if ``exc`` is something else."""
    # h5py reports a full disk as an OSError without errno, and safetensors as its own error type
    # ("I/O error: No space left on device (os error 28)"); both name it in the message.
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or any(
        sign in str(exc) for sign in ("No space left", "Disk quota exceeded", "File too large"))
    if full:
        return UserError(f"disk full while writing {target}; the previous version is intact")
    return None


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    tmp = temporary_sibling(target)
    try:
        yield tmp
        commit(tmp, target)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise (disk_full_error(exc, target) or exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: Path, payload: Any) -> None:
    write_bytes(target, (json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode())
