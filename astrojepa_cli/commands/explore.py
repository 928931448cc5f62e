"""``astrojepa explore``: an interactive map of a run's latent space, one offline HTML page (or served)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from astrojepa_cli.commands.common import (
    DataOption, DeviceOption, JsonOption, PoolOption, RootOption, RunArgument, TtaOption, cli_command, report,
)
from astrojepa_cli.commands.evaluated_run import frozen_features, open_with_data
from astrojepa_cli.console import emit_json, stderr
from astrojepa_cli.errors import UserError

DEFAULT_SKY_URL = "https://www.legacysurvey.org/viewer?ra={ra}&dec={dec}&layer=ls-dr10&zoom=14"


@cli_command
def explore(
    run_ref: RunArgument,
    data: DataOption = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="The page to write (default: RUN/explore/DATA.html).")] = None,
    color_by: Annotated[str, typer.Option("--color-by", help="label, anomaly, split, or a catalog column or target of the store.")] = "label",
    method: Annotated[Optional[str], typer.Option("--method", help="umap, pca or tsne (default: umap when umap-learn is installed, else pca).", show_default=False)] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the page on 127.0.0.1 with thumbnails sent on demand (large stores) instead of writing a file.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve (0: any free port).")] = 8765,
    top: Annotated[int, typer.Option("--top", help="How many of the most unusual objects to list.")] = 25,
    k: Annotated[int, typer.Option("--k", help="Nearest neighbours shown for a clicked object.")] = 10,
    sky_url: Annotated[str, typer.Option("--sky-url", help="Sky-viewer URL with {ra} and {dec} (degrees), linked where the store has ra and dec.")] = DEFAULT_SKY_URL,
    tta: TtaOption = "none",
    pool: PoolOption = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write an interactive map of the run's embedding of a dataset: one HTML page that opens offline.

    Every object is a point; hovering shows its thumbnail, id, label and catalog columns; clicking shows
    its nearest neighbours (the search 'similar' runs); box or lasso selections download as CSV; a search
    box and a list of the most unusual objects centre the map. Anomaly scores are the run's latest
    'anomalies' record for this embedding, else knn scores computed on the spot.

    Examples:

      astrojepa explore latest

      astrojepa explore RUN --color-by anomaly --method tsne --out map.html

      astrojepa explore RUN --data big-survey --serve --port 8800
    """
    from astrojepa_cli import runs
    from astrojepa_cli.atomic import write_bytes
    from astrojepa_cli.evaluate.explore import explorer_data
    from astrojepa_cli.evaluate.explore.explorer_build import Embedding, ExplorerOptions, build_explorer
    from astrojepa_cli.evaluate.explore.explorer_page import check_sky_template
    from astrojepa_cli.evaluate.explore.recorded_scores import anomaly_scores
    from astrojepa_cli.evaluate.features import check_pool_name, check_tta

    method = method or explorer_data.default_method()
    explorer_data.check_map_method(method)
    check_sky_template(sky_url)
    check_tta(tta)
    if pool is not None:
        check_pool_name(pool)
    if serve and out is not None:
        raise UserError("--serve serves the page instead of writing it; give --out or --serve, not both")
    if top < 1 or k < 1:
        raise UserError(f"--top and --k must be at least 1 (got {top} and {k})")
    run, data_name, store_path = open_with_data(run_ref, data, root)
    explorer_data.check_color_by(color_by, explorer_data.catalog_columns(store_path))
    pool = pool or runs.run_pool(run.manifest)
    server = _bind(store_path, port) if serve else None  # a busy port fails before the embedding is computed
    try:
        features, encoder = frozen_features(run, store_path, device, tta, pool)
        scores, note = anomaly_scores(run.manifest.get("evaluations", {}), data_name, pool, tta, features.ids,
                                      features.embeddings, encoder.saved_step)
        options = ExplorerOptions(method, color_by, top, k, sky_url, serve)
        page, summary = build_explorer(features, store_path, scores, note, options,
                                       Embedding(run.id, data_name, pool, tta))
    except BaseException:
        if server is not None:
            server.server_close()
        raise
    if server is not None:
        return _serve(server, page, summary, json_output)
    path = out or run.dir / "explore" / f"{data_name}.html"
    write_bytes(path, page.encode("utf-8"))
    size = path.stat().st_size
    report({"path": str(path), "bytes": size, **summary}, json_output, lambda: stderr.print(
        f"wrote the explorer of {summary['n']:,} objects ({summary['method']} map, {size / 1e6:.1f} MB) to {path}",
        highlight=False, soft_wrap=True))
    _warn_if_large(size)


def _bind(store_path: Path, port: int):
    from astrojepa_cli.evaluate.explore.explorer_server import explorer_server
    from astrojepa_cli.evaluate.explore.thumbnails import ThumbnailReader

    return explorer_server(ThumbnailReader(store_path), port)


def _serve(server, page: str, summary: dict, json_output: bool) -> None:
    """Serve until Ctrl-C; the URL goes first (JSON on stdout with --json), so scripts can wait for it."""
    server.page, url = page.encode("utf-8"), server.url
    if json_output:
        emit_json({"url": url, **summary})
    stderr.print(f"serving the explorer of {summary['n']:,} objects at {url} (Ctrl-C to stop)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        stderr.print("stopped", highlight=False)
    finally:
        server.server_close()


def _warn_if_large(size: int) -> None:
    from astrojepa_cli.evaluate.explore.explorer_build import PAGE_LIMIT_BYTES

    if size > PAGE_LIMIT_BYTES:
        stderr.print(f"[yellow]warning:[/] the page is {size / 1e6:.0f} MB and may open slowly; --serve sends "
                     "thumbnails on demand instead", highlight=False)
