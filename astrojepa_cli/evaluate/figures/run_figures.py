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
from astrojepa_cli.evaluate.figures.labels import base_protocol, class_label, probe_name, titled, trained_on
from astrojepa_cli.evaluate.probes.context import random_init_key
from astrojepa_cli.evaluate.figures.plotting import anomaly_mosaic, save_figure, sky_positions
from astrojepa_cli.evaluate.figures.results import confusion_figure, curves_figure, latent_figure
from astrojepa_cli.evaluate.figures.training import loss_curves, present_monitors, read_metrics, training_monitors
from astrojepa_cli.runs import Run

CURVE_PROTOCOLS = {"few-shot": "shots", "label-fraction": "fraction"}
RANDOM_INIT = "-random-init"


def training_figures(run: Run, out_dir: Path, pdf: bool, title: str | None = None) -> list[Path]:
    """Loss curves (always) and the per-epoch monitors (once an epoch has finished); ``title`` (``plot
    --title``) heads every figure, above what the figure shows."""
    rows = read_metrics(run.metrics_path)
    if not rows:
        raise UserError(f"run {run.id} has no metrics rows yet")
    files = save_figure(loss_curves(rows, titled(f"training loss: {trained_on(run.manifest)}", title)),
                        out_dir / "loss.png", pdf)
    epochs = run.manifest.get("epochs", [])
    if present_monitors(epochs):
        figure = training_monitors(epochs, titled(f"collapse monitors: {trained_on(run.manifest)}", title))
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


def evaluation_figures(run: Run, out_dir: Path, pdf: bool, title: str | None = None) -> list[Path]:
    """Confusion matrices, label-efficiency curves (pretrained and random weights together) and anomaly mosaics."""
    evaluations = run.manifest.get("evaluations", {})
    files: list[Path] = []
    for key, record in confusion_records(evaluations).items():
        data, _, protocol = key.partition("/")
        twin = random_init_key(key, base_protocol(protocol))
        baseline = None if RANDOM_INIT in key else evaluations.get(twin, {}).get("balanced_accuracy")
        figure = confusion_figure(record["confusion_matrix"], [class_label(name) for name in record["classes"]],
                                  titled(f"{probe_name(protocol)} on {data}", title), record.get("balanced_accuracy"),
                                  baseline)
        files += save_figure(figure, out_dir / f"confusion-{_slug(key)}.png", pdf)
    for key, record in evaluations.items():
        data, _, protocol = key.partition("/")
        base = base_protocol(protocol)
        if base in CURVE_PROTOCOLS and RANDOM_INIT not in protocol:
            curves = {"pretrained": record}
            if random_init_key(key, base) in evaluations:
                curves["random weights, same architecture"] = evaluations[random_init_key(key, base)]
            classes = record.get("classes") or []
            figure = curves_figure(curves, CURVE_PROTOCOLS[base], titled(f"{probe_name(protocol)} on {data}", title),
                                   chance=1 / len(classes) if classes else None)
            files += save_figure(figure, out_dir / f"{protocol}-{data}.png", pdf)
        elif protocol.startswith("anomalies-") and Path(record.get("json", "")).is_file():
            files += save_figure(anomaly_figure(record, data, title), out_dir / f"{_slug(key)}.png", pdf)
    return files


def anomaly_figure(record: dict, data: str, title: str | None = None):
    """The anomaly mosaic again, from the ranked JSON an ``anomalies`` call wrote, with sky positions if known."""
    ranked = json.loads(Path(record["json"]).read_text())[: record["top"]]
    meta = store.load(Path(record["store"]), with_images=False)
    rows = [row_of_id(meta.ids, r["id"]) for r in ranked]
    return anomaly_mosaic(ranked, images_at(Path(record["store"]), np.array(rows)),
                          titled(f"{len(ranked)} most unusual in {data} ({record['scorer']} score)", title),
                          score_meaning(record["scorer"], record.get("k", 10)), sky_positions(meta.columns, rows))


def latent_map(features: Features, class_names: list[str], method: str, out_path: Path, pdf: bool,
               heading: str, title: str | None = None) -> list[Path]:
    """Embeddings projected to 2-D with ``method`` (pca, tsne, umap), coloured by class; ``heading`` says
    what they are, under ``title`` (``plot --title``)."""
    projection = project_2d(features.embeddings, method)
    return save_figure(latent_figure(projection, features.labels, [class_label(name) for name in class_names],
                                     titled(f"{projection.name} {heading}", title)), out_path, pdf)
