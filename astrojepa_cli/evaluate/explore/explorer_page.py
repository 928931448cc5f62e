"""The explorer page: one self-contained Bokeh HTML file (inline BokehJS, WebGL points, HTML tooltips).

Every object is a point of the 2-D map; hovering shows its thumbnail, id, label and catalog columns;
selecting one fills a panel with its nearest neighbours; the selection downloads as CSV; a search box and
a table of the most unusual objects centre the map. Nothing is fetched from the network: thumbnails are
data URIs in the page, or URLs of the local server that serves it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    Button, ColorBar, ColumnDataSource, DataTable, Div, HoverTool, HTMLTemplateFormatter, InlineStyleSheet,
    NumberFormatter, TableColumn, TapTool, TextInput,
)
from bokeh.palettes import Category10, Category20, Viridis256, turbo
from bokeh.plotting import figure
from bokeh.resources import INLINE
from bokeh.transform import factor_cmap, linear_cmap

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.explore import explorer_callbacks as callbacks
from astrojepa_cli.evaluate.explore.explorer_data import ExplorerData

SIDE_WIDTH = 500  # pixels: the search box, object panel and anomaly table
TOOLTIP_COLUMNS = 8  # catalog columns shown on hover, in the object panel and in the CSV
HINT = "<div class='aj-hint'>Click a point to see it and its nearest neighbours.</div>"
# Each Bokeh widget renders in its own shadow root, so the panel carries its own style sheet.
PANEL_CSS = """
.aj-object img, .aj-item img { background: #000; display: block; }
.aj-object { display: flex; gap: 8px; }
.aj-gallery { display: flex; flex-wrap: wrap; gap: 6px; }
.aj-item { width: 92px; font-size: 10px; overflow-wrap: anywhere; }
.aj-heading { margin: 8px 0 4px; font-weight: bold; }
"""


@dataclass
class PageText:
    """What the page says about itself: its title and the lines under it (map method, colour, score)."""

    title: str
    notes: list[str]


def check_sky_template(template: str) -> None:
    """A sky-viewer URL must hold both ``{ra}`` and ``{dec}`` (degrees) and no other ``{...}`` field."""
    try:
        template.format(ra=0.0, dec=0.0)
    except (KeyError, IndexError, ValueError):
        raise UserError(f"--sky-url may hold only {{ra}} and {{dec}} as fields (got {template})") from None
    if "{ra}" not in template or "{dec}" not in template:
        raise UserError(f"--sky-url must hold {{ra}} and {{dec}} (got {template})")


def _sky_keys(names: list[str], keys: list[str], columns: dict[str, np.ndarray]) -> tuple[str, str] | None:
    lower = {name.lower(): key for name, key in zip(names, keys) if columns[name].dtype.kind == "f"}
    return (lower["ra"], lower["dec"]) if "ra" in lower and "dec" in lower else None


def _factors(values: np.ndarray) -> list[str]:
    """Categories, the most frequent first."""
    names, counts = np.unique(values, return_counts=True)
    return [str(names[i]) for i in np.argsort(-counts, kind="stable")]


def _palette(n: int) -> list[str]:
    if n <= 10:
        return list(Category10[10][:n])
    return list(Category20[20][:n]) if n <= 20 else list(turbo(n))


def _source(data: ExplorerData, thumbs: list[str], keys: list[str], names: list[str]) -> ColumnDataSource:
    columns = {
        "x": data.projection.coordinates[:, 0].astype(np.float32),
        "y": data.projection.coordinates[:, 1].astype(np.float32),
        "id": data.ids.tolist(), "label": data.labels.tolist(), "split": data.split.tolist(), "thumb": thumbs,
        "score": data.scores.astype(np.float64),
        "colour": data.colour.values.tolist() if data.colour.categorical else data.colour.values,
    }
    for key, name in zip(keys, names):
        values = data.columns[name]
        columns[key] = values.astype(np.float64) if values.dtype.kind in "fiub" else values.astype(str).tolist()
    for r in range(data.neighbours.shape[1]):
        columns[f"nb{r}"] = np.ascontiguousarray(data.neighbours[:, r])
        columns[f"ns{r}"] = np.ascontiguousarray(data.similarities[:, r])
    return ColumnDataSource(columns, name="points")


def _tooltip(keys: list[str], names: list[str]) -> str:
    rows = "".join(f"<div>{html.escape(name)}: @{{{key}}}</div>" for key, name in zip(keys, names))
    return ('<div class="aj-tip"><img src="@thumb" width="96" height="96" alt="@id" style="background: #000">'
            f"<div><b>@id</b></div><div>@label</div>{rows}</div>")


def _map(data: ExplorerData, source: ColumnDataSource, tooltip: str):
    axis_x, axis_y = data.projection.axis_labels
    plot = figure(width=800, height=680, output_backend="webgl", x_axis_label=axis_x, y_axis_label=axis_y,
                  tools="pan,wheel_zoom,box_select,lasso_select,reset,save", active_scroll="wheel_zoom",
                  title=f"{data.projection.name} map, coloured by {data.colour.name}", name="map")
    style = dict(size=6 if len(data.ids) < 20_000 else 3, line_color=None, fill_alpha=0.75,
                 nonselection_fill_alpha=0.35, selection_line_color="black", selection_fill_alpha=1.0)
    if data.colour.categorical:
        factors = _factors(data.colour.values)
        fill = factor_cmap("colour", _palette(len(factors)), factors)
        points = plot.scatter("x", "y", source=source, fill_color=fill, legend_field="colour", name="points-glyph",
                              **style)
        plot.add_layout(plot.legend[0], "right")
        plot.legend[0].title = data.colour.name
    else:
        finite = data.colour.values[np.isfinite(data.colour.values)]
        low, high = np.percentile(finite, [1, 99]) if len(finite) else (0.0, 1.0)
        fill = linear_cmap("colour", Viridis256, float(low), float(high), nan_color="lightgrey")
        points = plot.scatter("x", "y", source=source, fill_color=fill, name="points-glyph", **style)
        plot.add_layout(ColorBar(color_mapper=fill.transform, title=data.colour.name), "right")
    plot.add_tools(HoverTool(renderers=[points], tooltips=tooltip), TapTool(renderers=[points]))
    return plot


def _anomaly_table(data: ExplorerData, thumbs: list[str], top: int) -> tuple[ColumnDataSource, DataTable]:
    rows = np.argsort(-data.scores, kind="stable")[:top]
    top_source = ColumnDataSource({
        "rank": list(range(1, len(rows) + 1)), "row": rows.tolist(), "id": data.ids[rows].tolist(),
        "label": data.labels[rows].tolist(), "score": data.scores[rows].tolist(), "thumb": [thumbs[i] for i in rows],
    }, name="top-anomalies")
    thumb = HTMLTemplateFormatter(template='<img src="<%= value %>" height="36" width="36">')
    table = DataTable(source=top_source, width=SIDE_WIDTH, height=330, row_height=40, index_position=None,
                      reorderable=False, columns=[
        TableColumn(field="rank", title="#", width=30), TableColumn(field="thumb", title="", formatter=thumb, width=46),
        TableColumn(field="id", title="id", width=140), TableColumn(field="label", title="label", width=80),
        TableColumn(field="score", title="score", formatter=NumberFormatter(format="0.000"), width=60),
    ], name="anomaly-table")
    return top_source, table


def explorer_html(data: ExplorerData, thumbs: list[str], text: PageText, top: int, sky_template: str) -> str:
    """The whole page as one HTML string; ``thumbs`` holds each object's image URL (data URI or server path)."""
    check_sky_template(sky_template)
    if top < 1:
        raise UserError(f"--top must be at least 1 (got {top})")
    # RA and Dec first: the sky-viewer links need them among the columns the page carries.
    names = sorted(data.columns, key=lambda name: name.lower() not in ("ra", "dec"))[:TOOLTIP_COLUMNS]
    keys = [f"c{i}" for i in range(len(names))]
    source = _source(data, thumbs, keys, names)
    plot = _map(data, source, _tooltip(keys, names))
    panel = Div(text=HINT, width=SIDE_WIDTH, name="neighbours", stylesheets=[InlineStyleSheet(css=PANEL_CSS)])
    count = Div(text="", width=SIDE_WIDTH, name="selection-count")
    shown = [("split", "split"), *zip(keys, names)]
    source.selected.js_on_change("indices", callbacks.show_selection(
        source, panel, count, shown, data.neighbours.shape[1], sky_template, _sky_keys(names, keys, data.columns), HINT))
    search = TextInput(title="Find an object by id", placeholder="id, then Enter", width=SIDE_WIDTH,
                       name="search")
    search.js_on_change("value", callbacks.search_by_id(source, panel, plot.x_range, plot.y_range))
    download = Button(label="Download the selected ids (CSV)", width=SIDE_WIDTH, name="download")
    fields = [("id", "id"), ("label", "label"), ("score", "anomaly_score"), *zip(keys, names)]
    download.js_on_click(callbacks.download_selection(source, fields, "selection.csv"))
    top_source, table = _anomaly_table(data, thumbs, top)
    top_source.selected.js_on_change("indices", callbacks.centre_on_table_row(top_source, source, plot.x_range,
                                                                              plot.y_range))
    header = Div(text=f"<h2>{html.escape(text.title)}</h2>"
                 + "".join(f"<div>{html.escape(note)}</div>" for note in text.notes), width=1340, name="header")
    side = column(search, download, count, panel, Div(text=f"<b>The {len(top_source.data['row'])} most unusual</b> "
                                                           "(select one to centre the map on it)", width=SIDE_WIDTH),
                  table)
    return file_html(column(header, row(plot, side)), resources=INLINE, title=text.title)
