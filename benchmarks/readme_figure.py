"""The README's figure: what the quickstart made, drawn from the run it made.

Three panels: the pretraining loss, the linear probe's balanced accuracy beside the same
network with random weights and chance, and the most unusual objects of the anomaly
ranking. Run the README's quickstart into a home that is kept, then draw it::

    ASTROJEPA_BUDGET_CLOCK=cpu python benchmarks/first_run.py --home /tmp/quickstart-home
    python benchmarks/readme_figure.py latest --root /tmp/quickstart-home --out docs/figures/quickstart.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrojepa_cli import paths, runs  # noqa: E402
from astrojepa_cli.data import store  # noqa: E402
from astrojepa_cli.errors import UserError  # noqa: E402
from astrojepa_cli.evaluate.features import images_at  # noqa: E402
from astrojepa_cli.evaluate.figures.plotting import display_image  # noqa: E402
from astrojepa_cli.evaluate.figures.training import integer_ticks, read_metrics  # noqa: E402
from astrojepa_cli.evaluate.probes.context import plain_key, random_init_key  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOWN_ANOMALIES = 8


def _evaluation(run: runs.Run, key: str, command: str) -> dict:
    found = run.manifest.get("evaluations", {}).get(key)
    if found is None:
        raise UserError(f"run {run.id} has no '{key}' evaluation; run '{command}' first")
    return found


def draw(run: runs.Run, root: Path | None, out: Path) -> None:
    data = run.manifest["dataset"]["name"]
    store_path = paths.existing_store(data, root)
    info = store.read_info(store_path)
    probed = plain_key(run.manifest, data)  # the plain 'astrojepa probe RUN' of the run's embedding
    linear = _evaluation(run, probed, f"astrojepa probe {run.id}")
    random_weights = _evaluation(run, random_init_key(probed, "linear"), f"astrojepa probe {run.id}")
    anomalies = _evaluation(run, plain_key(run.manifest, data, "anomalies-knn"), f"astrojepa anomalies {run.id}")
    records = json.loads(Path(anomalies["json"]).read_text())[:SHOWN_ANOMALIES]
    ids = store.load(store_path, with_images=False).ids
    row_of = {object_id: row for row, object_id in enumerate(ids)}
    images = images_at(store_path, np.array([row_of[record["id"]] for record in records]))

    figure = plt.figure(figsize=(13, 3.9), layout="constrained")
    loss_panel, probe_panel, mosaic_panel = figure.subfigures(1, 3, width_ratios=[1, 0.8, 1.5])

    axis = loss_panel.subplots()
    rows = [row for row in read_metrics(run.metrics_path) if "loss" in row]
    axis.plot([row["step"] for row in rows], [row["loss"] for row in rows], color="C0", marker="o")
    integer_ticks(axis)
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("training loss")
    config = run.manifest["config"]
    axis.set_title(f"1. pretrain: {config['loss']} {config['arch']},\n{run.manifest.get('steps')} steps "
                   f"on {data} (no labels)", fontsize=10)

    axis = probe_panel.subplots()
    chance = 1.0 / len(info.classes)
    bars = axis.bar(["pretrained", "random\nweights", "chance"],
                    [linear["balanced_accuracy"], random_weights["balanced_accuracy"], chance],
                    color=["C0", "C1", "0.7"])
    axis.bar_label(bars, fmt="%.2f", fontsize=9)
    axis.set_ylim(0, 1)
    axis.set_ylabel("balanced accuracy (test split)")
    axis.set_title(f"2. probe: linear classifier on\nfrozen features, {len(info.classes)} classes", fontsize=10)

    axes = mosaic_panel.subplots(2, SHOWN_ANOMALIES // 2)
    for axis, image, record in zip(axes.flat, images, records):
        axis.imshow(display_image(image), cmap="gray")
        axis.set_title(f"#{record['rank']} {record['label']}", fontsize=8)
        axis.axis("off")
    mosaic_panel.suptitle(f"3. anomalies: the {SHOWN_ANOMALIES} most unusual of {len(ids):,}", fontsize=10)

    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", default="latest", help="run id, folder or 'latest'")
    parser.add_argument("--root", type=Path, default=None, help="astrojepa home (default: $ASTROJEPA_HOME)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "quickstart.png")
    args = parser.parse_args()
    try:
        draw(runs.open_run(args.run, args.root), args.root, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
