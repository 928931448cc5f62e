"""``astrojepa fetch-data``: import a source into the canonical store (``fetch-data SOURCE``, short for
``fetch-data import SOURCE``); ``fetch-data list`` and ``fetch-data verify NAME`` for the stores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.commands.default_command import group_with_default
from astrojepa_cli.console import counts, stderr
from astrojepa_cli.data.sources import source_names
from astrojepa_cli.errors import UserError

if TYPE_CHECKING:
    from astrojepa_cli.data.store import StoreInfo

fetch_app = typer.Typer(
    cls=group_with_default("import"), no_args_is_help=True,
    help="Import a dataset into one verified HDF5 store, list the stores, or verify one. "
         "'fetch-data SOURCE' is short for 'fetch-data import SOURCE'.\n\n"
         "Examples:\n\n  astrojepa fetch-data first-radio\n\n  astrojepa fetch-data list\n\n"
         "  astrojepa fetch-data verify gz1 --json",
)


def summary(info: StoreInfo) -> dict:
    return {"name": info.name, "store": info.path, "n_images": info.n_images, "image_shape": info.image_shape,
            "dtype": info.dtype, "classes": info.classes, "splits": info.splits, "targets": info.targets,
            "sha256": info.sha256}


def described(info: StoreInfo) -> str:
    """A store in one line for people: ``2,158 images of 64×64×1, splits test 200, train 1,758, valid 200,
    classes FRI, FRII`` (``unlabelled`` when it has no classes)."""
    shape = "×".join(str(side) for side in info.image_shape)
    classes = f"classes {', '.join(info.classes)}" if info.classes else "unlabelled"
    targets = f", targets {', '.join(info.targets)}" if info.targets else ""
    return f"{info.n_images:,} images of {shape}, splits {counts(info.splits)}, {classes}{targets}"


def _channel_list(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--channels takes comma-separated channel indices such as 0,2; got '{text}'") from None


@fetch_app.command("import")
@cli_command
def import_source(
    source: Annotated[str, typer.Argument(help=f"One of: {', '.join(source_names())}.")],
    target: Annotated[Optional[str], typer.Argument(help="Folder for 'folder'; file for 'jets', 'npz', 'h5'.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the store (default: the source name).")] = None,
    size: Annotated[int, typer.Option(help="Stored image size in pixels (square).")] = 64,
    crop: Annotated[float, typer.Option(help="Centre crop: fraction of the shorter side kept before resizing.")] = 1.0,
    channels: Annotated[Optional[str], typer.Option(help="Keep only these channels, e.g. 0,2 (default: all).")] = None,
    float16: Annotated[bool, typer.Option("--float16", help="Store float images as float16 (half the size).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the stratified split when the source has none.")] = 0,
    strict: Annotated[bool, typer.Option(help="Fail on an undecodable image instead of skipping it.")] = False,
    catalog: Annotated[Optional[Path], typer.Option(help="folder: catalog CSV (default: PATH/catalog.csv).")] = None,
    file_column: Annotated[Optional[str], typer.Option(help="folder: catalog column with the image paths.")] = None,
    url: Annotated[Optional[str], typer.Option(help="galaxy10-*: download from this mirror instead.")] = None,
    md5: Annotated[Optional[str], typer.Option(help="galaxy10-*: expected md5, replacing the published checksum.")] = None,
    file: Annotated[Optional[Path], typer.Option(help="galaxy10-*: import this local file instead of downloading.")] = None,
    images_key: Annotated[Optional[str], typer.Option(help="npz/h5: array with the images (default: images).")] = None,
    labels_key: Annotated[Optional[str], typer.Option(help="npz/h5: array with the labels (default: labels).")] = None,
    image_column: Annotated[Optional[str], typer.Option(help="hf: column with the images.")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="hf: column with the labels.")] = None,
    split: Annotated[Optional[str], typer.Option(help="hf: import only this split.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a store of the same name (runs trained on it "
                                                       "can then no longer resume).")] = False,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Import a dataset into one verified HDF5 store ('import' may be left out).

    Examples:

      astrojepa fetch-data first-radio

      astrojepa fetch-data galaxy10-decals --size 128

      astrojepa fetch-data folder ../shared/data/gz1-sdss --name gz1 --crop 0.5 --size 64

      astrojepa fetch-data jets quark-gluon.h5 --size 125 --float16

      astrojepa fetch-data hf:user/galaxies --split train --image-column image
    """
    from astrojepa_cli import paths
    from astrojepa_cli.data.sources import ImportOptions, SourceArgs, default_store_name, source_for

    importer = source_for(source)
    if size < 8:
        raise UserError(f"--size must be at least 8 pixels, got {size}")
    store_name = name or default_store_name(source)
    if paths.store_path(store_name, root).exists() and not force:
        raise UserError(f"a store named '{store_name}' already exists ({paths.store_path(store_name, root)}); "
                        "choose another --name, or pass --force to replace it")
    options = ImportOptions(store=paths.store_path(store_name, root), name=store_name, size=size, crop=crop,
                            seed=seed, strict=strict, channels=_channel_list(channels), float16=float16)
    args = SourceArgs(path=Path(target) if target else None, catalog=catalog, file_column=file_column, url=url,
                      md5=md5, file=file, images_key=images_key, labels_key=labels_key, image_column=image_column,
                      label_column=label_column, split=split)
    info = importer(options, args)
    for warning in options.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    report(summary(info), json_output,
           lambda: stderr.print(f"stored {escape(described(info))} in {escape(str(info.path))}", highlight=False))


@fetch_app.command("list")
@cli_command
def list_stores(root: RootOption = None, json_output: JsonOption = False) -> None:
    """List the stores under ROOT/data with their images, shape, classes, splits and size on disk.

    Example: astrojepa fetch-data list --json | jq -r '.stores[].name'
    """
    from astrojepa_cli.data import store

    infos = store.list_stores(root)

    def human() -> None:
        table = Table("name", "images", "shape", "classes", "splits", "size")
        for info, size in infos:
            table.add_row(info.name, f"{info.n_images:,}", "×".join(map(str, info.image_shape)),
                          str(len(info.classes)) if info.classes else "unlabelled", counts(info.splits),
                          f"{size / 2**20:.1f} MiB")
        stderr.print(table)

    report({"stores": [{**summary(info), "bytes": size} for info, size in infos]}, json_output, human)


@fetch_app.command("verify")
@cli_command
def verify_store(
    name: Annotated[Optional[str], typer.Argument(help="Store name (see 'fetch-data list').", show_default=False)] = None,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Validate a store's layout and re-hash its content against the SHA-256 recorded at import.

    Example: astrojepa fetch-data verify gz1 --json
    """
    from astrojepa_cli import paths
    from astrojepa_cli.data import store

    if not name:
        raise UserError("usage: astrojepa fetch-data verify NAME")
    info = store.verify(paths.existing_store(name, root))
    report({**summary(info), "verified": True}, json_output)
