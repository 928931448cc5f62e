"""Dataset sources. Each turns its input into the canonical store via ``StoreWriter``.

A source is a function ``(ImportOptions, **source_args) -> StoreInfo`` listed in
:data:`SOURCES` under the name users type after ``fetch-data``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.errors import UserError


@dataclass
class ImportOptions:
    """Options shared by every source."""

    store: Path
    name: str
    size: int = 64
    crop: float = 1.0
    seed: int = 0
    strict: bool = False
    warnings: list[str] = field(default_factory=list)


def _first_radio(options: ImportOptions, **kwargs) -> StoreInfo:
    from astrojepa_cli.data.sources.first_radio import import_first_radio

    return import_first_radio(options, **kwargs)


def _folder(options: ImportOptions, **kwargs) -> StoreInfo:
    from astrojepa_cli.data.sources.folder import import_folder

    return import_folder(options, **kwargs)


SOURCES: dict[str, Callable[..., StoreInfo]] = {
    "first-radio": _first_radio,
    "folder": _folder,
}


def source_for(name: str) -> Callable[..., StoreInfo]:
    """The import function for a source name; an unknown name lists the valid ones."""
    if name in SOURCES:
        return SOURCES[name]
    close = difflib.get_close_matches(name, SOURCES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown source '{name}'.{hint} Valid sources: {', '.join(sorted(SOURCES))}")
