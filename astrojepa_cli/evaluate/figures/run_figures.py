"""Which figures a run can show, drawn from its metrics, its manifest and its recorded evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.explore.anomalies import score_meaning
from astrojepa_cli.evaluate.features import Features, images_at, row_of_id
from astrojepa_cli.evaluate.explore.latent import project_2d
from astrojepa_cli.evaluate.figures.plotting import anomaly_mosaic, save_figure, sky_positions
from astrojepa_cli.evaluate.figures.results import confusion_figure, curves_figure, latent_figure
from astrojepa_cli.evaluate.figures.training import loss_curves, present_monitors, read_metrics, training_monitors
from astrojepa_cli.runs import Run

CURVE_PROTOCOLS = {"few-shot": "shots", "label-fraction": "fraction"}
CURVE_TITLES = {"few-shot": "few-shot linear probe", "label-fraction": "label-fraction linear probe"}
RANDOM_INIT = "-random-init"


def _trained_on(run: Run) -> str:
    config = run.manifest.get("config", {})
    what = " ".join(str(part) for part in (config.get("loss"), config.get("arch")) if part)
    return f"{what} on {run.manifest.get('dataset', {}).get('name', 'unknown data')}"


def training_figures(run: Run, out_dir: Path, pdf: bool) -> list[Path]:
    """Loss curves (always) and the per-epoch monitors (once an epoch has finished)."""
    rows = read_metrics(run.metrics_path)
    if not rows:
        raise UserError(f"run {run.id} has no metrics rows yet")
    files = save_figure(loss_curves(rows, f"training loss: {_trained_on(run)}\n{run.id}"), out_dir / "loss.png", pdf)
    epochs = run.manifest.get("epochs", [])
    if present_monitors(epochs):
        figure = training_monitors(epochs, f"collapse monitors: {_trained_on(run)}\n{run.id}")
        files += save_figure(figure, out_dir / "monitors.png", pdf)
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


def _probe_name(protocol: str) -> str:
    return protocol.replace(RANDOM_INIT, " probe of random weights") if RANDOM_INIT in protocol else f"{protocol} probe"


def evaluation_figures(run: Run, out_dir: Path, pdf: bool) -> list[Path]:
    """Confusion matrices, label-efficiency curves (pretrained and random weights together) and anomaly mosaics."""
    evaluations = run.manifest.get("evaluations", {})
    files: list[Path] = []
    for key, record in confusion_records(evaluations).items():
        data, _, protocol = key.partition("/")
        baseline = None if RANDOM_INIT in key else evaluations.get(f"{key}{RANDOM_INIT}", {}).get("balanced_accuracy")
        figure = confusion_figure(record["confusion_matrix"], record["classes"],
                                  f"{_probe_name(protocol)} on {data} ({run.id})", record.get("balanced_accuracy"),
                                  baseline)
        files += save_figure(figure, out_dir / f"confusion-{_slug(key)}.png", pdf)
    for key, record in evaluations.items():
        data, _, protocol = key.partition("/")
        if protocol in CURVE_PROTOCOLS:
            curves = {"pretrained": record}
            if f"{key}{RANDOM_INIT}" in evaluations:
                curves["random weights, same architecture"] = evaluations[f"{key}{RANDOM_INIT}"]
            classes = record.get("classes") or []
            figure = curves_figure(curves, CURVE_PROTOCOLS[protocol], f"{CURVE_TITLES[protocol]} on {data} ({run.id})",
                                   chance=1 / len(classes) if classes else None)
            files += save_figure(figure, out_dir / f"{protocol}-{data}.png", pdf)
        elif protocol.startswith("anomalies-") and Path(record.get("json", "")).is_file():
            files += save_figure(anomaly_figure(record, data), out_dir / f"{_slug(key)}.png", pdf)
    return files


def anomaly_figure(record: dict, data: str):
    """The anomaly mosaic again, from the ranked JSON an ``anomalies`` call wrote, with sky positions if known."""
    ranked = json.loads(Path(record["json"]).read_text())[: record["top"]]
    meta = store.load(Path(record["store"]), with_images=False)
    rows = [row_of_id(meta.ids, r["id"]) for r in ranked]
    return anomaly_mosaic(ranked, images_at(Path(record["store"]), np.array(rows)),
                          f"{len(ranked)} most unusual in {data} ({record['scorer']} score)",
                          score_meaning(record["scorer"], record.get("k", 10)), sky_positions(meta.columns, rows))


def latent_map(features: Features, class_names: list[str], method: str, out_path: Path, pdf: bool,
               title: str) -> list[Path]:
    """Embeddings projected to 2-D with ``method`` (pca, tsne, umap), coloured by class."""
    projection = project_2d(features.embeddings, method)
    return save_figure(latent_figure(projection, features.labels, class_names, f"{projection.name} {title}"),
                       out_path, pdf)
