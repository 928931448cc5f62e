"""``astrojepa similar``: the objects nearest to a query in a run's embedding space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DeviceOption, JsonOption, PoolOption, RootOption, RunArgument, cli_command, report,
)
from astrojepa_cli.commands.evaluated_run import open_with_data
from astrojepa_cli.commands.render import neighbour_table
from astrojepa_cli.console import stderr


@cli_command
def similar(
    run_ref: RunArgument,
    object_id: Annotated[Optional[str], typer.Option("--id", help="Id of the query object in the dataset.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="An image file as the query (8-bit stores), cropped and resized as the store's images were at import.")] = None,
    k: Annotated[int, typer.Option("--k", help="How many neighbours to list.")] = 10,
    data: Annotated[Optional[str], typer.Option("--data", help="Store to search (default: the run's training data).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the mosaic as PDF.")] = False,
    pool: PoolOption = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the K objects most similar (cosine similarity of embeddings) to an object or an image file,
    and write a mosaic of them (a new file for each query). Uses faiss when it is installed, else an exact numpy search.
    The store's embeddings are computed once and kept in the run's cache (see `astrojepa runs cache`).

    Examples:

      astrojepa similar latest --id 587722981741363294 --k 12

      astrojepa similar RUN --image my_galaxy.png --json | jq -r '.neighbours[].id'
    """
    from astrojepa_cli import runs
    from astrojepa_cli.evaluate.explore.similarity import similar_objects
    from astrojepa_cli.runs.embedding_cache import EmbeddingCache

    def run_device():
        from astrojepa_cli.train.distributed import resolve_device

        return resolve_device(device)

    run, data_name, store_path = open_with_data(run_ref, data, root)
    result = similar_objects(lambda: runs.load_encoder(run), store_path, k, run.dir / "similar", object_id, image,
                             run_device, runs.run_stretch(run.manifest), pdf,
                             pool or runs.run_pool(run.manifest), EmbeddingCache.of_run(run))
    report(result, json_output, lambda: stderr.print(neighbour_table(data_name, result), highlight=False))
