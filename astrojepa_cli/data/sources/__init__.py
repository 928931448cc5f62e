"""Dataset sources. Each turns its input into the canonical store via ``StoreWriter``.

A source is a function ``(ImportOptions, SourceArgs) -> StoreInfo`` listed in
:data:`SOURCES` under the name users type after ``fetch-data``; ``hf:<repo_id>``
names a Hugging Face dataset. Each source module is imported only when used, so
optional dependencies (``datasets``, ``astropy``) stay optional.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from astrojepa_cli.errors import UserError

if TYPE_CHECKING:
    from astrojepa_cli.data.store import StoreInfo

HF_PREFIX = "hf:"


@dataclass
class ImportOptions:
    """Options shared by every source."""

    store: Path
    name: str
    size: int = 64
    crop: float = 1.0
    seed: int = 0
    strict: bool = False
    channels: tuple[int, ...] | None = None
    float16: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class SourceArgs:
    """Source-specific inputs from the command line; each source reads only its own."""

    path: Path | None = None
    catalog: Path | None = None
    file_column: str | None = None
    url: str | None = None
    md5: str | None = None
    file: Path | None = None
    images_key: str | None = None
    labels_key: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    split: str | None = None

    def require_only(self, source: str, allowed: tuple[str, ...]) -> None:
        """Reject options given for ``source`` that it does not use."""
        unused = [f.name for f in fields(self) if getattr(self, f.name) is not None and f.name not in allowed]
        if unused:
            flags = ", ".join("PATH" if name == "path" else "--" + name.replace("_", "-") for name in unused)
            raise UserError(f"source '{source}' does not take {flags}")


def _first_radio(options: ImportOptions, args: SourceArgs) -> StoreInfo:
    from astrojepa_cli.data.sources.first_radio import import_first_radio

    args.require_only("first-radio", ())
    return import_first_radio(options)


def _folder(options: ImportOptions, args: SourceArgs) -> StoreInfo:
    from astrojepa_cli.data.sources.folder import import_folder

    args.require_only("folder", ("path", "catalog", "file_column"))
    if args.path is None:
        raise UserError("usage: astrojepa fetch-data folder PATH [--catalog CSV]")
    return import_folder(options, args.path, args.catalog, args.file_column)


def _galaxy10(release_name: str) -> Callable[[ImportOptions, SourceArgs], StoreInfo]:
    def importer(options: ImportOptions, args: SourceArgs) -> StoreInfo:
        from astrojepa_cli.data.sources.galaxy10 import RELEASES, import_galaxy10

        args.require_only(release_name, ("url", "md5", "file"))
        return import_galaxy10(options, RELEASES[release_name], url=args.url, md5=args.md5, file=args.file)

    return importer


def _jets(options: ImportOptions, args: SourceArgs) -> StoreInfo:
    from astrojepa_cli.data.sources.jets import import_jets

    args.require_only("jets", ("path",))
    if args.path is None:
        raise UserError("usage: astrojepa fetch-data jets FILE.h5")
    return import_jets(options, args.path)


def _array_file(kind: str) -> Callable[[ImportOptions, SourceArgs], StoreInfo]:
    def importer(options: ImportOptions, args: SourceArgs) -> StoreInfo:
        from astrojepa_cli.data.sources.arrays import import_array_file

        args.require_only(kind, ("path", "images_key", "labels_key"))
        if args.path is None:
            raise UserError(f"usage: astrojepa fetch-data {kind} FILE [--images-key KEY] [--labels-key KEY]")
        return import_array_file(options, kind, args.path, args.images_key, args.labels_key)

    return importer


def _hugging_face(repo_id: str) -> Callable[[ImportOptions, SourceArgs], StoreInfo]:
    def importer(options: ImportOptions, args: SourceArgs) -> StoreInfo:
        from astrojepa_cli.data.sources.hf import import_hugging_face

        args.require_only(HF_PREFIX + repo_id, ("image_column", "label_column", "split"))
        return import_hugging_face(options, repo_id, args.image_column, args.label_column, args.split)

    return importer


SOURCES: dict[str, Callable[[ImportOptions, SourceArgs], StoreInfo]] = {
    "first-radio": _first_radio,
    "folder": _folder,
    "galaxy10-decals": _galaxy10("galaxy10-decals"),
    "galaxy10-sdss": _galaxy10("galaxy10-sdss"),
    "jets": _jets,
    "npz": _array_file("npz"),
    "h5": _array_file("h5"),
}


def source_names() -> list[str]:
    """What users may type after ``fetch-data`` (``hf:<repo_id>`` stands for any Hugging Face dataset)."""
    return sorted(SOURCES) + [HF_PREFIX + "<repo_id>"]


def default_store_name(source: str) -> str:
    """The store name when ``--name`` is not given: the source name, or ``hf-<last part of the dataset id>``."""
    if not source.startswith(HF_PREFIX):
        return source
    last = source[len(HF_PREFIX):].rstrip("/").replace("*", "").rsplit("/", 1)[-1].removesuffix(".parquet")
    return f"hf-{last}" if last else "hf"


def source_for(name: str) -> Callable[[ImportOptions, SourceArgs], StoreInfo]:
    """The import function for a source name; an unknown name lists the valid ones."""
    if name in SOURCES:
        return SOURCES[name]
    if name.startswith(HF_PREFIX):
        repo_id = name[len(HF_PREFIX):]
        if not repo_id:
            raise UserError("give the dataset after 'hf:', e.g. hf:user/dataset or hf:path/to/local/dataset")
        return _hugging_face(repo_id)
    close = difflib.get_close_matches(name, SOURCES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown source '{name}'.{hint} Valid sources: {', '.join(source_names())}")
