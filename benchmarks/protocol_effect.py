"""What the evaluation protocol alone does to a score: random-weights features under the old and the fixed protocol.

No pretraining is involved, so every difference between the columns is the yardstick's. For each of
three random-weights networks of one architecture (timm's initialisation as built; the same with
BatchNorm statistics re-estimated on the train images; and with its zero-initialised residual
branches revived and BatchNorm re-estimated, :mod:`astrojepa_cli.evaluate.probes.random_baseline`),
it reports:

* the mean pairwise cosine of the train embeddings (near 1: every image looks alike to a cosine kNN);
* kNN-20 balanced accuracy on raw features (the old probe) and on standardised ones (the fixed probe);
* the linear probe's balanced accuracy with the old C grid (0.01-10) and the fixed one (1e-4-1e2),
  the C chosen, solver convergence and the probe's time;
* 95 % bootstrap intervals, and the paired interval of the strongest network minus the network as built.

Usage (a quarter of gz1-sdss, every fourth catalog row, at 32 px)::

    awk -F, 'NR == 1 || NR % 4 == 2' ../shared/data/gz1-sdss/catalog.csv > /tmp/quarter.csv
    astrojepa fetch-data folder ../shared/data/gz1-sdss --catalog /tmp/quarter.csv --name gz1-32q --crop 0.5 --size 32
    python benchmarks/protocol_effect.py --data gz1-32q --json benchmarks/results/protocol-effect-resnet18.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli import paths
from astrojepa_cli.data import store
from astrojepa_cli.evaluate.features import extract
from astrojepa_cli.evaluate.probes import linear
from astrojepa_cli.evaluate.probes.bootstrap import paired_difference_interval, with_interval
from astrojepa_cli.evaluate.probes.knn import knn_classifier, knn_probe
from astrojepa_cli.evaluate.probes.linear import classification_metrics, linear_probe, train_and_test
from astrojepa_cli.evaluate.probes.random_baseline import random_networks
from registry.encoders import Encoder

OLD_C_GRID = (0.01, 0.1, 1.0, 10.0)


def mean_pairwise_cosine(embeddings: np.ndarray, sample: int = 500) -> float:
    """Mean cosine similarity over the pairs of the first ``sample`` rows."""
    unit = embeddings[:sample] / np.linalg.norm(embeddings[:sample], axis=1, keepdims=True)
    return float((unit @ unit.T)[np.triu_indices(len(unit), 1)].mean())


def score_row(features, classes: list[str], y_test: np.ndarray) -> dict:
    """The old and the fixed probes of one network's features."""
    x_train, y_train, x_test, y_test_rows = train_and_test(features)
    raw_knn = knn_classifier(20)[-1].fit(x_train, y_train).predict(x_test)
    knn = with_interval(knn_probe(features, classes, 20), y_test)
    start = time.process_time()
    fixed = with_interval(linear_probe(features, classes), y_test)
    fixed_s = time.process_time() - start
    wide_grid, linear.C_GRID = linear.C_GRID, OLD_C_GRID
    try:
        start = time.process_time()
        old = linear_probe(features, classes)
        old_s = time.process_time() - start
    finally:
        linear.C_GRID = wide_grid
    return {
        "mean_pairwise_cosine_train": round(mean_pairwise_cosine(x_train), 4),
        "knn20_raw": round(classification_metrics(y_test_rows, raw_knn, classes)["balanced_accuracy"], 4),
        "knn20_standardised": round(knn["balanced_accuracy"], 4),
        "knn20_standardised_ci": [round(v, 4) for v in knn["balanced_accuracy_ci"]],
        "linear_old_grid": round(old["balanced_accuracy"], 4), "linear_old_grid_C": old["C"],
        "linear_old_grid_cpu_s": round(old_s, 1),
        "linear_fixed_grid": round(fixed["balanced_accuracy"], 4), "linear_fixed_grid_C": fixed["C"],
        "linear_fixed_grid_ci": [round(v, 4) for v in fixed["balanced_accuracy_ci"]],
        "linear_fixed_grid_converged": fixed["converged"], "linear_fixed_grid_cpu_s": round(fixed_s, 1),
        "test_predictions": fixed["test_predictions"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--arch", default="resnet18", help="a timm architecture name")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--pool", default="last2", help="mean or last2 (the small-cpu preset's embedding)")
    parser.add_argument("--tta", default="d4", help="none or d4 (the benchmarks' protocol)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    path = paths.existing_store(args.data, args.root)
    info, meta = store.read_info(path), store.load(path, with_images=False)
    y_test = meta.labels[(meta.split == "test") & (meta.labels >= 0)]

    def build() -> Encoder:
        encoder = Encoder(args.arch, in_chans=info.channels)  # timm's own initialisation, zeroed branches included
        encoder.input_size = args.img_size
        return encoder

    torch.manual_seed(0)
    networks = {"as built": build().eval(),
                **{f"{name}, BatchNorm re-estimated": net for name, net in random_networks(build, 0, path, "cpu").items()}}
    rows = {name: score_row(extract(net, path, pool=args.pool, tta=args.tta), info.classes, y_test)
            for name, net in networks.items()}
    strongest = max(rows, key=lambda name: rows[name]["linear_fixed_grid"])
    difference = {"of": f"{strongest} minus as built",
                  "difference": round(rows[strongest]["linear_fixed_grid"] - rows["as built"]["linear_fixed_grid"], 4),
                  "ci": paired_difference_interval(y_test, np.array(rows[strongest]["test_predictions"]),
                                                   np.array(rows["as built"]["test_predictions"]))}
    for row in rows.values():
        row.pop("test_predictions")
    result = {"arch": args.arch, "data": args.data, "img_size": args.img_size, "pool": args.pool, "tta": args.tta,
              "n_test": int(len(y_test)), "rows": rows, "linear_difference": difference}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
