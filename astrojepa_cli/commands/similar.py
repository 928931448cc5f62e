"""``astrojepa similar``: the objects nearest to a query in a run's embedding space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from astrojepa_cli import paths, runs
from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.console import stderr
from astrojepa_cli.runs import run_stretch
from astrojepa_cli.evaluate.explore.similarity import similar_objects
from astrojepa_cli.train.distributed import resolve_device


@cli_command
def similar(
    run_ref: Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")],
    object_id: Annotated[Optional[str], typer.Option("--id", help="Id of the query object in the dataset.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="An image file as the query (8-bit stores), cropped and resized as the store's images were at import.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many neighbours to list.")] = 10,
    data: Annotated[Optional[str], typer.Option("--data", help="Store to search (default: the run's training data).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the mosaic as PDF.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the K objects most similar (cosine similarity of embeddings) to an object or an image file,
    and write a mosaic of them (a new file for each query). Uses faiss when it is installed, else scikit-learn.

    Examples:

      astrojepa similar latest --id 587722981741363294 --k 12

      astrojepa similar RUN --image my_galaxy.png --json | jq -r '.neighbours[].id'
    """
    run = runs.open_run(run_ref, root)
    data_name = data or run.manifest["dataset"]["name"]
    result = similar_objects(runs.load_encoder(run), paths.existing_store(data_name, root), k, run.dir / "similar",
                             object_id, image, resolve_device(device), run_stretch(run.manifest), pdf)

    def human() -> None:
        table = Table("rank", "id", "cosine similarity", "label", title=f"nearest to {result['query']} in {data_name}")
        for neighbour in result["neighbours"]:
            table.add_row(str(neighbour["rank"]), neighbour["id"], f"{neighbour['similarity']:.4f}", neighbour["label"])
        stderr.print(table)
        stderr.print(f"mosaic: {result['mosaic']}", highlight=False)

    report(result, json_output, human)
