"""Where stores and runs live: ``--root``, else ``$ASTROJEPA_HOME``, else ``~/.astrojepa``."""

from __future__ import annotations

import os
from pathlib import Path

from astrojepa_cli.errors import UserError


def home(root: Path | None = None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("ASTROJEPA_HOME", "~/.astrojepa")).expanduser()


def data_dir(root: Path | None = None) -> Path:
    return home(root) / "data"


def runs_dir(root: Path | None = None) -> Path:
    return home(root) / "runs"


def store_path(name: str, root: Path | None = None) -> Path:
    """Path of the canonical store called ``name`` (it need not exist yet)."""
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"invalid dataset name '{name}': use letters, digits, '-' and '_'")
    return data_dir(root) / f"{name}.h5"


def existing_store(name: str, root: Path | None = None) -> Path:
    """Path of an existing store; a clear error names the stores that do exist."""
    path = store_path(name, root)
    if not path.exists():
        have = sorted(p.stem for p in data_dir(root).glob("*.h5"))
        listing = ", ".join(have) if have else "none yet"
        raise UserError(
            f"no dataset '{name}' under {data_dir(root)} (have: {listing}); "
            f"run 'astrojepa fetch-data first-radio' or 'astrojepa fetch-data folder PATH'"
        )
    return path
