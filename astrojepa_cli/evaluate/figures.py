"""Which figures a run can show, drawn from its metrics, its manifest and its recorded evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrojepa_cli.data import store
from astrojepa_cli.evaluate.features import Features, images_at, row_of_id
from astrojepa_cli.evaluate.latent import project_2d
from astrojepa_cli.evaluate.plots import anomaly_mosaic, save_figure
from astrojepa_cli.evaluate.result_plots import confusion_figure, curves_figure, latent_figure
from astrojepa_cli.evaluate.training_plots import loss_curves, present_monitors, read_metrics, training_monitors
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs import Run

CURVE_PROTOCOLS = {"few-shot": "shots", "label-fraction": "fraction"}
RANDOM_INIT = "-random-init"


def training_figures(run: Run, out_dir: Path, pdf: bool) -> list[Path]:
    """Loss curves (always) and the per-epoch monitors (once an epoch has finished)."""
    rows = read_metrics(run.metrics_path)
    if not rows:
        raise UserError(f"run {run.id} has no metrics rows yet")
    files = save_figure(loss_curves(rows, f"training loss of {run.id}"), out_dir / "loss.png", pdf)
    epochs = run.manifest.get("epochs", [])
    if present_monitors(epochs):
        files += save_figure(training_monitors(epochs, f"monitors of {run.id}"), out_dir / "monitors.png", pdf)
    return files


def _slug(key: str) -> str:
    return key.replace("/", "-")


def confusion_records(evaluations: dict) -> dict[str, dict]:
    """Evaluation key -> record with a confusion matrix (fine-tuning contributes its pretrained model's)."""
    found = {}
    for key, record in evaluations.items():
        if "confusion_matrix" in record:
            found[key] = record
        elif "confusion_matrix" in record.get("pretrained", {}):
            found[f"{key}-pretrained"] = record["pretrained"]
    return found


def evaluation_figures(run: Run, out_dir: Path, pdf: bool) -> list[Path]:
    """Confusion matrices, label-efficiency curves (pretrained and random init together) and anomaly mosaics."""
    evaluations = run.manifest.get("evaluations", {})
    files: list[Path] = []
    for key, record in confusion_records(evaluations).items():
        figure = confusion_figure(record["confusion_matrix"], record["classes"], f"{key} ({run.id})")
        files += save_figure(figure, out_dir / f"confusion-{_slug(key)}.png", pdf)
    for key, record in evaluations.items():
        data, _, protocol = key.partition("/")
        if protocol in CURVE_PROTOCOLS:
            curves = {"pretrained": record}
            if f"{key}{RANDOM_INIT}" in evaluations:
                curves["random init"] = evaluations[f"{key}{RANDOM_INIT}"]
            figure = curves_figure(curves, CURVE_PROTOCOLS[protocol], f"{protocol} probe on {data} ({run.id})")
            files += save_figure(figure, out_dir / f"{protocol}-{data}.png", pdf)
        elif protocol.startswith("anomalies-") and Path(record.get("json", "")).is_file():
            files += save_figure(anomaly_figure(record, data), out_dir / f"{_slug(key)}.png", pdf)
    return files


def anomaly_figure(record: dict, data: str):
    """The anomaly mosaic again, from the ranked JSON an ``anomalies`` call wrote."""
    ranked = json.loads(Path(record["json"]).read_text())[: record["top"]]
    ids = store.load(Path(record["store"]), with_images=False).ids
    rows = [row_of_id(ids, r["id"]) for r in ranked]
    return anomaly_mosaic(ranked, images_at(Path(record["store"]), np.array(rows)),
                          f"{len(ranked)} most unusual in {data} ({record['scorer']} score)")


def latent_map(features: Features, class_names: list[str], method: str, out_path: Path, pdf: bool,
               title: str) -> list[Path]:
    """Embeddings projected to 2-D with ``method`` (pca, tsne, umap), coloured by class."""
    coordinates = project_2d(features.embeddings, method)
    return save_figure(latent_figure(coordinates, features.labels, class_names, method, title), out_path, pdf)
