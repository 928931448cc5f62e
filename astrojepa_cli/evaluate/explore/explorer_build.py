"""Building the latent-space explorer of a run's embedding of a store: its data, thumbnails and page."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrojepa_cli.evaluate.explore import explorer_data, thumbnails
from astrojepa_cli.evaluate.explore.explorer_page import PageText, explorer_html
from astrojepa_cli.evaluate.explore.explorer_server import thumbnail_url
from astrojepa_cli.evaluate.features import Features

PAGE_LIMIT_BYTES = 20_000_000  # a page larger than this is slow to open; --serve keeps thumbnails out of it
THUMBNAIL_BUDGET_BYTES = 16_000_000  # the inline thumbnails' share of it


@dataclass
class ExplorerOptions:
    method: str
    colour_by: str
    top: int
    k: int
    sky_template: str  # a sky viewer's URL with {ra} and {dec}
    serve: bool  # thumbnails as server URLs, not inline


@dataclass
class Embedding:
    """Where the features came from, for the page's title: run, store, pooling and test-time averaging."""

    run_id: str
    data_name: str
    pool: str
    tta: str


def _map_note(method: str, name: str) -> str:
    note = f"map: {name} of the standardised embeddings"
    if method != "umap" and importlib.util.find_spec("umap") is None:
        note += " (UMAP is not installed: pip install 'astrojepa[umap]' for UMAP maps)"
    return note


def build_explorer(features: Features, store_path: Path, scores: np.ndarray, score_note: str, options: ExplorerOptions,
                   source: Embedding) -> tuple[str, dict]:
    """The explorer page (HTML) and a summary of it: objects, map method, colouring, thumbnail size."""
    data = explorer_data.gather(features, store_path, options.method, scores, options.colour_by, options.k)
    n = len(data.ids)
    if options.serve:
        urls, side = [thumbnail_url(row) for row in range(n)], thumbnails.SIDE
    else:
        side = thumbnails.side_for_budget(store_path, THUMBNAIL_BUDGET_BYTES)
        urls = thumbnails.inline_thumbnails(store_path, side)
    search = "faiss" if importlib.util.find_spec("faiss") is not None else "numpy"
    text = PageText(
        title=f"{n:,} objects of {source.data_name} in the embedding of run {source.run_id}",
        notes=[f"embedding: {source.pool} pooling, test-time averaging {source.tta}",
               _map_note(options.method, data.projection.name),
               f"colour: {data.colour.name}",
               f"anomalies: {score_note}",
               f"neighbours: the {data.neighbours.shape[1]} nearest by cosine similarity ({search}), "
               "as 'astrojepa similar' finds them"])
    page = explorer_html(data, urls, text, options.top, options.sky_template)
    return page, {"n": n, "method": data.projection.name, "colour_by": data.colour.name,
                  "thumbnail_px": side, "scores": score_note, "neighbours": int(data.neighbours.shape[1])}
