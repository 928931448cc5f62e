"""``astrojepa fetch-data``: import a source into the canonical store; ``verify`` and ``list`` stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from astrojepa_cli import paths
from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.console import stderr
from astrojepa_cli.data import store
from astrojepa_cli.data.sources import SOURCES, ImportOptions, source_for
from astrojepa_cli.errors import UserError


def summary(info: store.StoreInfo) -> dict:
    return {"name": info.name, "store": info.path, "n_images": info.n_images, "image_shape": info.image_shape,
            "classes": info.classes, "splits": info.splits, "sha256": info.sha256}


def _list_stores(root: Path | None, as_json: bool) -> None:
    infos = []
    for path in sorted(paths.data_dir(root).glob("*.h5")):
        try:
            infos.append((store.read_info(path), path.stat().st_size))
        except UserError as exc:
            stderr.print(f"[yellow]warning:[/] {exc}")

    def human() -> None:
        table = Table("name", "images", "shape", "classes", "splits", "size")
        for info, size in infos:
            table.add_row(info.name, str(info.n_images), "x".join(map(str, info.image_shape)), str(len(info.classes)),
                          " ".join(f"{k}:{v}" for k, v in info.splits.items()), f"{size / 2**20:.1f} MiB")
        stderr.print(table)

    report({"stores": [{**summary(info), "bytes": size} for info, size in infos]}, as_json, human)


@cli_command
def fetch_data(
    source: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(SOURCES))}; or 'verify NAME' / 'list'.")],
    target: Annotated[Optional[str], typer.Argument(help="Folder for 'folder'; store name for 'verify'.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the store (default: the source name).")] = None,
    size: Annotated[int, typer.Option(help="Stored image size in pixels (square).")] = 64,
    crop: Annotated[float, typer.Option(help="Centre crop: fraction of the shorter side kept before resizing.")] = 1.0,
    catalog: Annotated[Optional[Path], typer.Option(help="Catalog CSV for 'folder' (default: PATH/catalog.csv).")] = None,
    file_column: Annotated[Optional[str], typer.Option(help="Catalog column with the image paths.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the stratified split when the source has none.")] = 0,
    strict: Annotated[bool, typer.Option(help="Fail on an undecodable image instead of skipping it.")] = False,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Import a dataset into one verified HDF5 store.

    Examples:

      astrojepa fetch-data first-radio

      astrojepa fetch-data folder ../shared/data/gz1-sdss --name gz1 --crop 0.5 --size 64

      astrojepa fetch-data verify gz1 --json

      astrojepa fetch-data list
    """
    if source == "list":
        return _list_stores(root, json_output)
    if source == "verify":
        if not target:
            raise UserError("usage: astrojepa fetch-data verify NAME")
        info = store.verify(paths.existing_store(target, root))
        return report({**summary(info), "verified": True}, json_output)
    importer = source_for(source)
    if size < 8:
        raise UserError(f"--size must be at least 8 pixels, got {size}")
    store_name = name or source
    options = ImportOptions(store=paths.store_path(store_name, root), name=store_name, size=size, crop=crop,
                            seed=seed, strict=strict)
    extra = {}
    if source == "folder":
        if not target:
            raise UserError("usage: astrojepa fetch-data folder PATH [--catalog CSV]")
        extra = {"path": Path(target), "catalog": catalog, "file_column": file_column}
    info = importer(options, **extra)
    for warning in options.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")
    report(summary(info), json_output,
           lambda: stderr.print(f"stored [bold]{info.n_images}[/] images {info.image_shape} in {info.path} "
                                f"(splits {info.splits}, classes {info.classes})", highlight=False))
