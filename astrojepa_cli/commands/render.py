"""Rich renderings of command results for people; ``--json`` prints the same results as data."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

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


def rows_table(columns: list[str], rows: list[dict]) -> Table:
    """One row per record, one column per key (``-`` for a missing value)."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*("-" if row.get(key) is None else str(row[key]) for key in columns))
    return table


def comparison_table(comparison: dict) -> Table:
    """Config differences, final losses and evaluation results, one column per run."""
    table = Table("", *comparison["runs"], title="run comparison")
    for key, values in comparison["config_differences"].items():
        table.add_row(f"config {key}", *(str(v) for v in values))
    table.add_row("final loss", *(f"{v:.4g}" if v is not None else "-" for v in comparison["final_loss"]))
    for key, found in comparison["evaluations"].items():
        table.add_row(f"{key} ({found['metric']})", *(f"{v:.4f}" if v is not None else "-" for v in found["values"]))
    return table


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
