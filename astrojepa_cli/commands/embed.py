"""``astrojepa embed``: the frozen embeddings of a dataset, written to a file or stdout."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DataOption, DeviceOption, JsonOption, PoolOption, RootOption, RunArgument, TtaOption, cli_command, report,
)
from astrojepa_cli.commands.evaluated_run import open_with_data
from astrojepa_cli.console import stderr
from astrojepa_cli.errors import UserError


@cli_command
def embed(
    run_ref: RunArgument,
    data: DataOption = None,
    out: Annotated[Optional[str], typer.Option(help="Output file, or '-' for stdout (default: RUN/embeddings/DATA.FORMAT).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="safetensors, npy, parquet, csv, fits or votable (default: from --out's suffix, else safetensors).")] = None,
    pool: PoolOption = None,
    tta: TtaOption = "none",
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write the frozen embeddings of every image of a dataset, in store order, streaming in chunks.

    safetensors holds embeddings, labels, targets and catalog columns (ids in its metadata); npy the
    (N, D) float32 matrix; parquet, csv, fits and votable one row per object: id, split, label,
    label_name, targets, the store's catalog columns (e.g. ra, dec), e0..e{D-1}. A file's suffix
    must match its format. The embeddings are kept in the run's cache, so `similar`, `anomalies`,
    `probe` and `plot --latent` reuse them (see `astrojepa runs cache`).

    Examples:

      astrojepa embed latest --data gz1

      astrojepa embed RUN --out gz1.parquet

      astrojepa embed RUN --out gz1.fits

      astrojepa embed RUN --format npy --out - > embeddings.npy
    """
    from astrojepa_cli import runs
    from astrojepa_cli.atomic import atomic_path
    from astrojepa_cli.data import store
    from astrojepa_cli.evaluate import features as feature_extraction
    from astrojepa_cli.evaluate.explore import embedding_files
    from astrojepa_cli.runs.embedding_cache import EmbeddingCache
    from astrojepa_cli.train.distributed import resolve_device

    fmt = embedding_files.resolve_format(fmt, out)
    if out == "-" and json_output:
        raise UserError("--json and --out - both write to stdout; choose one")
    run, data_name, store_path = open_with_data(run_ref, data, root)
    cache = EmbeddingCache.of_run(run)  # before the encoder is loaded (see EmbeddingCache.of_run)
    encoder = runs.load_encoder(run)
    pool = pool or runs.run_pool(run.manifest)
    feature_extraction.check_pool(encoder, pool)
    feature_extraction.check_tta(tta)
    meta = store.load(store_path, with_images=False)
    chunks = feature_extraction.iter_embeddings(encoder, store_path, resolve_device(device), pool,
                                                runs.run_stretch(run.manifest), tta=tta, cache=cache)
    first = next(chunks)  # the pooling sets the width (last2 concatenates two stages)
    chunks, n, dim = itertools.chain([first], chunks), len(meta.ids), first.shape[1]
    arguments = (fmt, chunks, meta, store.read_info(store_path).classes, dim)
    metadata = {"run_id": run.id, "dataset": data_name, "pool": pool, "tta": tta}
    if out == "-":
        embedding_files.write_embeddings(*arguments, sys.stdout.buffer, metadata)
        sys.stdout.buffer.flush()
        path = "-"
    else:
        path = Path(out) if out else run.dir / "embeddings" / f"{data_name}.{fmt}"
        with atomic_path(path) as tmp, open(tmp, "wb") as stream:
            embedding_files.write_embeddings(*arguments, stream, metadata)
    report({"path": str(path), "n": int(n), "dim": int(dim), "format": fmt, "pool": pool, "tta": tta}, json_output,
           lambda: stderr.print(f"wrote {n} embeddings of dimension {dim} ({fmt}) to {path}", highlight=False,
                                soft_wrap=True))
