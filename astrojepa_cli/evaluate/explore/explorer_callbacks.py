"""The explorer page's browser-side behaviour: small Bokeh CustomJS callbacks, each attached to one widget.

Selecting exactly one point (a click, the id search, the anomaly list) fills the object panel with that
object and the gallery of its precomputed nearest neighbours; a larger selection (box, lasso) is counted
and can be downloaded as CSV.
"""

from __future__ import annotations

from bokeh.models import CustomJS

# Shared helpers, prepended to the callbacks that need them.
_ESCAPE = r"""
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
"""

_SKY = r"""
function skyLink(i) {
  if (!ra_key) return "";
  const ra = data[ra_key][i], dec = data[dec_key][i];
  if (!Number.isFinite(ra) || !Number.isFinite(dec)) return "";
  const url = sky_template.replaceAll("{ra}", ra.toFixed(6)).replaceAll("{dec}", dec.toFixed(6));
  return ` <a class="aj-sky" href="${esc(url)}" target="_blank" rel="noopener">sky viewer</a>`;
}
"""

_CENTRE = r"""
function centre(i) {
  const x = source.data.x[i], y = source.data.y[i];
  const half_x = (x_range.end - x_range.start) / 2, half_y = (y_range.end - y_range.start) / 2;
  x_range.setv({start: x - half_x, end: x + half_x});
  y_range.setv({start: y - half_y, end: y + half_y});
  source.selected.indices = [i];
}
"""

_SHOW = _ESCAPE + _SKY + r"""
const data = source.data, indices = source.selected.indices;
count.text = indices.length > 1 ? `${indices.length} objects selected` : "";
if (indices.length !== 1) {
  if (indices.length === 0) panel.text = hint;
  return;
}
const i = indices[0];
const rows = columns.map(([key, name]) => {
  const value = data[key][i];
  const shown = typeof value === "number" ? (Number.isFinite(value) ? value.toPrecision(6) : "") : value;
  return `<div>${esc(name)}: ${esc(shown)}</div>`;
}).join("");
let html = `<div class="aj-object" data-id="${esc(data.id[i])}"><img src="${esc(data.thumb[i])}" width="128" height="128">`
  + `<div><div><b>${esc(data.id[i])}</b> ${esc(data.label[i])}${skyLink(i)}</div>`
  + `<div>anomaly score: ${data.score[i].toPrecision(4)}</div>${rows}</div></div>`
  + `<div class="aj-heading">${k} nearest (cosine similarity)</div><div class="aj-gallery">`;
for (let r = 0; r < k; r++) {
  const j = data["nb" + r][i];
  if (j < 0) continue;
  html += `<div class="aj-item" data-id="${esc(data.id[j])}"><img src="${esc(data.thumb[j])}" width="64" height="64">`
    + `<div>${esc(data.id[j])}</div><div>${esc(data.label[j])} cos ${data["ns" + r][i].toFixed(3)}${skyLink(j)}</div></div>`;
}
panel.text = html + "</div>";
"""

_SEARCH = _ESCAPE + _CENTRE + r"""
const wanted = cb_obj.value.trim();
if (!wanted) return;
const i = source.data.id.indexOf(wanted);
if (i < 0) {
  panel.text = `<div class="aj-missing">no object with id ${esc(wanted)}</div>`;
  return;
}
centre(i);
"""

_TABLE = _CENTRE + r"""
const picked = cb_obj.indices;
if (picked.length === 1) centre(top.data.row[picked[0]]);
"""

_DOWNLOAD = r"""
const data = source.data, indices = source.selected.indices;
if (indices.length === 0) return;
const quote = (value) => {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};
const lines = [fields.map(([, name]) => quote(name)).join(",")];
for (const i of indices) lines.push(fields.map(([key]) => quote(data[key][i])).join(","));
const blob = new Blob([lines.join("\n") + "\n"], {type: "text/csv"});
const link = document.createElement("a");
link.href = URL.createObjectURL(blob);
link.download = filename;
document.body.appendChild(link);
link.click();
link.remove();
setTimeout(() => URL.revokeObjectURL(link.href), 10000);
"""


def show_selection(source, panel, count, columns: list[tuple[str, str]], k: int, sky_template: str,
                   sky_keys: tuple[str, str] | None, hint: str) -> CustomJS:
    """Fill ``panel`` with the selected object and its ``k`` neighbours (``nb0``.. rows, ``ns0``.. similarities
    in the source); ``count`` says how many are selected when there are several."""
    ra_key, dec_key = sky_keys or ("", "")
    return CustomJS(args=dict(source=source, panel=panel, count=count, columns=[list(c) for c in columns], k=k,
                              sky_template=sky_template, ra_key=ra_key, dec_key=dec_key, hint=hint), code=_SHOW)


def search_by_id(source, panel, x_range, y_range) -> CustomJS:
    """On a TextInput's value: select and centre the object of that id, or say there is none."""
    return CustomJS(args=dict(source=source, panel=panel, x_range=x_range, y_range=y_range), code=_SEARCH)


def centre_on_table_row(top, source, x_range, y_range) -> CustomJS:
    """On a selection in the anomaly table (whose ``row`` column holds map rows): select and centre that object."""
    return CustomJS(args=dict(top=top, source=source, x_range=x_range, y_range=y_range), code=_TABLE)


def download_selection(source, fields: list[tuple[str, str]], filename: str) -> CustomJS:
    """Download the selected objects as CSV: one column per (source key, header) in ``fields``."""
    return CustomJS(args=dict(source=source, fields=[list(f) for f in fields], filename=filename), code=_DOWNLOAD)
