"""``embed``, ``probe``, ``anomalies`` and ``plot``: turn a run into numbers and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import torch
import typer
from rich.table import Table

from astrojepa_cli import paths, runs
from astrojepa_cli.commands.common import JsonOption, RootOption, cli_command, report
from astrojepa_cli.console import stderr
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate import anomalies as anomaly_scores
from astrojepa_cli.evaluate import features as feature_extraction
from astrojepa_cli.evaluate.plots import loss_curves, read_metrics, save_figure
from astrojepa_cli.evaluate.probe import linear_probe
from astrojepa_cli.train.distributed import resolve_device

RunArgument = Annotated[str, typer.Argument(help="Run id, run folder, or 'latest'.")]
DataOption = Annotated[Optional[str], typer.Option("--data", help="Store name (default: the run's training data).")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]


def _run_features(run_ref: str, data: str | None, root: Path | None, device: str, random_init: bool = False,
                  seed: int = 0):
    run = runs.open_run(run_ref, root)
    data_name = data or run.manifest["dataset"]["name"]
    store_path = paths.existing_store(data_name, root)
    encoder = runs.load_encoder(run)
    if random_init:
        torch.manual_seed(seed)
        encoder = runs.rebuild_encoder(encoder.timm_spec)
    features = feature_extraction.extract(encoder, store_path, resolve_device(device))
    return run, data_name, store_path, features


@cli_command
def embed(
    run_ref: RunArgument,
    data: DataOption = None,
    out: Annotated[Optional[Path], typer.Option(help="Output .safetensors (default: RUN/embeddings/DATA.safetensors).")] = None,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write the frozen embeddings of every image of a dataset.

    Examples:

      astrojepa embed latest --data gz1

      astrojepa embed RUN --json | jq -r .path
    """
    run, data_name, _, features = _run_features(run_ref, data, root, device)
    path = out or run.dir / "embeddings" / f"{data_name}.safetensors"
    feature_extraction.write_safetensors(features, path, {"run_id": run.id, "dataset": data_name})
    n, dim = features.embeddings.shape
    report({"path": str(path), "n": int(n), "dim": int(dim)}, json_output,
           lambda: stderr.print(f"wrote {n} embeddings of dimension {dim} to {path}", highlight=False))


@cli_command
def probe(
    run_ref: RunArgument,
    data: DataOption = None,
    random_init: Annotated[bool, typer.Option("--random-init", help="Probe the same architecture with random weights (a baseline).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the probe (and of --random-init weights).")] = 0,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Frozen linear probe: logistic regression on train-split embeddings, scored on the test split.

    Examples:

      astrojepa probe latest --data gz1

      astrojepa probe RUN --json | jq .balanced_accuracy
    """
    run, data_name, store_path, features = _run_features(run_ref, data, root, device, random_init, seed)
    classes = store.read_info(store_path).classes
    result = linear_probe(features, classes, seed=seed)
    protocol = "linear-random-init" if random_init else "linear"
    run.add_evaluation(f"{data_name}/{protocol}", result)
    payload = {"run_id": run.id, "data": data_name, "protocol": protocol, **result}

    def human() -> None:
        table = Table("metric", "value", title=f"{protocol} probe of {run.id} on {data_name}")
        table.add_row("accuracy", f"{result['accuracy']:.4f}")
        table.add_row("balanced accuracy", f"{result['balanced_accuracy']:.4f}")
        table.add_row("macro F1", f"{result['macro_f1']:.4f}")
        for name, recall in result["per_class_recall"].items():
            table.add_row(f"recall {name}", f"{recall:.4f}")
        stderr.print(table)

    report(payload, json_output, human)


@cli_command
def anomalies(
    run_ref: RunArgument,
    data: DataOption = None,
    top: Annotated[int, typer.Option(help="How many of the most unusual objects to show.")] = 25,
    k: Annotated[int, typer.Option(help="Neighbours for the kNN score.")] = 10,
    device: DeviceOption = "auto",
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rank the most unusual objects by their mean distance to the k nearest neighbours in embedding space.

    Examples:

      astrojepa anomalies latest --top 25

      astrojepa anomalies RUN --data gz1 --json | jq -r '.top[].id'
    """
    if top < 1:
        raise UserError("--top must be at least 1")
    run, data_name, store_path, features = _run_features(run_ref, data, root, device)
    scores = anomaly_scores.knn_scores(features.embeddings, k)
    top_rows = anomaly_scores.rank(scores, top)
    images = store.load(store_path).images[np.sort(top_rows)]
    images = images[np.argsort(np.argsort(top_rows))]  # back into rank order
    result = anomaly_scores.write_report(scores, top_rows, features.ids, features.labels,
                                         store.read_info(store_path).classes, images,
                                         run.dir / "anomalies" / data_name, f"{top} most unusual in {data_name}")
    run.add_evaluation(f"{data_name}/anomalies-knn", {"csv": result["csv"], "mosaic": result["mosaic"], "top": top})

    def human() -> None:
        table = Table("rank", "id", "score", "label", title=f"most unusual objects in {data_name}")
        for record in result["top"]:
            table.add_row(str(record["rank"]), record["id"], f"{record['score']:.4g}", record["label"])
        stderr.print(table)
        stderr.print(f"mosaic: {result['mosaic']}\nranked list: {result['csv']}", highlight=False)

    report(result, json_output, human)


@cli_command
def plot(
    run_ref: RunArgument,
    root: RootOption = None,
    json_output: JsonOption = False,
) -> None:
    """Plot a run's loss curves (total, prediction and SIGReg terms on separate axes).

    Examples:

      astrojepa plot latest

      astrojepa plot RUN --json | jq -r '.files[]'
    """
    run = runs.open_run(run_ref, root)
    rows = read_metrics(run.metrics_path)
    if not rows:
        raise UserError(f"run {run.id} has no metrics rows yet")
    path = save_figure(loss_curves(rows, f"{run.id}"), run.dir / "plots" / "loss.png")
    report({"files": [str(path)]}, json_output, lambda: stderr.print(f"wrote {path}", highlight=False))
