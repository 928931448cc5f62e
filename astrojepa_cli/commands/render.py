"""Rich renderings of command results for people; ``--json`` prints the same results as data."""

from __future__ import annotations

from typing import Callable

from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Column, Table

from astrojepa_cli.console import UNWRAPPED_WIDTH, significant

REGRESSION_AND_CLASSIFICATION = ("accuracy", "balanced_accuracy", "macro_f1", "mse", "rmse", "mae", "r2")


def _mean_std(result: dict, key: str) -> str:
    if isinstance(result[key], int):
        return str(result[key])
    spread = result.get(f"{key}_std")
    return f"{result[key]:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def probe_table(title: str, result: dict) -> Table:
    """Any probe protocol's result: a curve, fine-tuned against scratch, or one set of metrics."""
    if "curve" in result:
        axis = "shots" if "shots" in result["curve"][0] else "fraction"
        scratch = {point["shots"]: point for point in result.get("scratch_curve", [])}
        table = Table(axis, "accuracy", "balanced accuracy", "macro F1", "n train", title=title)
        if scratch:
            table.add_column("from scratch: balanced accuracy")
        for point in result["curve"]:
            table.add_row(str(point[axis]), _mean_std(point, "accuracy"), _mean_std(point, "balanced_accuracy"),
                          _mean_std(point, "macro_f1"), f"{point['n_train']:.0f}",
                          *([_mean_std(scratch[point[axis]], "balanced_accuracy")] if scratch else []))
        return table
    if "pretrained" in result:
        metrics = [k for k in REGRESSION_AND_CLASSIFICATION if k in result["pretrained"]]
        table = Table("metric", "fine-tuned pretrained", "trained from scratch", title=title)
        for key in metrics + ["best_epoch"]:
            table.add_row(key, _mean_std(result["pretrained"], key), _mean_std(result["scratch"], key))
        return table
    table = Table("metric", "value", title=title)
    for key in REGRESSION_AND_CLASSIFICATION:
        if key in result:
            table.add_row(key.replace("_", " "), _mean_std(result, key))
    if "baseline" in result:
        table.add_row("rmse of the train mean", f"{result['baseline']['rmse']:.4f}")
    for name, recall in result.get("per_class_recall", {}).items():
        table.add_row(f"recall {name}", f"{recall:.4f}")
    return table


def snapshot_table(title: str, result: dict) -> Table:
    """Probe scores of the kept encoders, step by step, with their rank correlation to the training loss."""
    correlation = result["spearman"]
    caption = (f"Spearman rho = {correlation['rho']:.3f} over {correlation['n']} checkpoints"
               if correlation["rho"] is not None else f"Spearman rho undefined: {correlation['reason']}")
    table = Table("step", "training loss", result["metric"].replace("_", " "), title=title, caption=caption)
    for row in result["snapshots"]:
        table.add_row(str(row["step"]), f"{row['loss']:.4f}", f"{row[result['metric']]:.4f}")
    return table


def anomaly_report(data_name: str, scorer: str, result: dict) -> Group:
    """The most unusual objects, the score of a known class as the anomaly, and the files written."""
    table = Table("rank", "id", "score", "label", title=f"most unusual objects in {data_name} ({scorer})")
    for record in result["top"]:
        table.add_row(str(record["rank"]), record["id"], f"{record['score']:.4g}", record["label"])
    parts: list = [table]
    if "evaluation" in result:
        measured = result["evaluation"]
        parts.append(f"class '{measured['class']}' as the anomaly: ROC-AUC {measured['roc_auc']:.4f}, "
                     f"precision@{measured['k']} {measured['precision_at_k']:.4f} "
                     f"(base rate {measured['base_rate']:.4f})")
    parts.append(f"mosaic: {result['mosaic']}\nranked list: {result['csv']}")
    return Group(*parts)


def neighbour_table(data_name: str, result: dict) -> Group:
    """The objects nearest to a query, and the mosaic written."""
    table = Table("rank", "id", "cosine similarity", "label", title=f"nearest to {result['query']} in {data_name}")
    for neighbour in result["neighbours"]:
        table.add_row(str(neighbour["rank"]), neighbour["id"], f"{neighbour['similarity']:.4f}", neighbour["label"])
    return Group(table, f"mosaic: {result['mosaic']}")


def _whole(header: str, values: list[str]) -> Column:
    """A column that is never cut or folded (a run id, a path): a narrow terminal folds the others first."""
    return Column(header, no_wrap=True, min_width=max([len(header), *map(len, values)]))


def rows_table(columns: list[str], rows: list[dict], whole: tuple[str, ...] = (),
               formats: dict[str, Callable[[object], str]] | None = None) -> Table:
    """One row per record, one column per key (``-`` for a missing value); the ``whole`` columns keep their
    values on one line, and ``formats`` turns a key's values into text (default: ``str``)."""
    formats = formats or {}
    cells = [["-" if row.get(key) is None else formats.get(key, str)(row[key]) for key in columns] for row in rows]
    headers = [key.replace("_", " ") for key in columns]
    table = Table(*(_whole(header, [line[i] for line in cells]) if key in whole else Column(header, overflow="fold")
                    for i, (key, header) in enumerate(zip(columns, headers))))
    for line in cells:
        table.add_row(*line)
    return table


def fitting_rows_table(columns: list[str], rows: list[dict], console: Console, dropped_first: list[str],
                       **options) -> Table:
    """:func:`rows_table` without as many of the ``dropped_first`` columns, in order, as the console's width
    needs (a column folded into slivers helps no one); the ``whole`` columns always stay."""
    shown = list(columns)
    table = rows_table(shown, rows, **options)
    for column in dropped_first:
        if Measurement.get(console, console.options.update_width(UNWRAPPED_WIDTH), table).maximum <= console.width:
            break
        shown.remove(column)
        table = rows_table(shown, rows, **options)
    return table


def comparison_table(comparison: dict, width: int) -> Group:
    """Config differences, final losses and evaluation results, one column per run. The columns are headed
    by the runs' full ids when they fit in ``width``, else by numbers that a list of the ids above explains."""
    labels = [f"config {key}" for key in comparison["config_differences"]] + ["final loss"] + [
        f"{key} ({found['metric']})" for key, found in comparison["evaluations"].items()]
    ids = comparison["runs"]
    fits = max(map(len, labels)) + sum(len(run) + 3 for run in ids) + 4 <= width
    headers = ids if fits else [f"run {number}" for number in range(1, len(ids) + 1)]
    table = Table(Column("", overflow="fold"), *(_whole(header, []) for header in headers), title="run comparison")
    for key, values in comparison["config_differences"].items():
        table.add_row(f"config {key}", *(str(v) for v in values))
    table.add_row("final loss", *(significant(v) for v in comparison["final_loss"]))
    for key, found in comparison["evaluations"].items():
        table.add_row(f"{key} ({found['metric']})", *(f"{v:.4f}" if v is not None else "-" for v in found["values"]))
    legend = "\n".join(f"{header}: {run}" for header, run in zip(headers, ids))
    return Group(table) if fits else Group(legend, table)


def plugin_tables(listing: dict[str, dict[str, str]]) -> Group:
    """One table per plugin kind, and one of the plugins that did not load."""
    tables = []
    for kind, described in listing.items():
        if described:
            table = Table("name", "why it did not load" if kind == "broken" else "description", title=f"{kind} plugins")
            for name, description in described.items():
                table.add_row(name, description)
            tables.append(table)
    return Group(*tables)
