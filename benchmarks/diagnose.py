"""Diagnose a pretrained encoder against the same network with random weights.

Usage::

    python benchmarks/diagnose.py RUN_ID --data gz1-48 --out benchmarks/results/diagnosis-NAME.json \\
        --figure docs/figures/diagnosis-NAME.png
    python benchmarks/diagnose.py base/gz1-48/seed0 --sweep benchmarks/results/cpu-recipes --data gz1-48 ...

``RUN`` is a run id (or folder), or with ``--sweep DIR`` the key of a finished row of that
sweep's ``rows.jsonl``. For the run's encoder and for the same architecture with random
weights (seed 0), on D4-averaged embeddings of every image of ``--data``, it measures:

* the spectrum: RankMe and the variance share of the top 1, 5 and 10 principal components;
* the Spearman correlation of the top 5 principal-component scores with each image's flux
  above the sky, apparent size, background level and centring offset;
* the frozen protocol's probes (linear, kNN-20, 10-shot) on the raw embedding, and the
  10-shot and kNN probes with the top 1, 5 and 10 principal components projected out
  (fitted on the train split; ``--linear-removed`` adds the slow all-label linear probe);
* for an objective with a projector, the same probes on the projector's output, rebuilt
  from the run's ``state.safetensors``;
* the learnable temperature's trajectory from the run's ``metrics.jsonl``.

It writes one JSON file and one multi-panel figure. The parts live in :mod:`diagnosis`: the run
to diagnose (``sources``), the measures (``measures``) and the figure (``figure``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli import paths, runs  # noqa: E402
from astrojepa_cli.atomic import write_json  # noqa: E402
from astrojepa_cli.data import store  # noqa: E402
from astrojepa_cli.errors import UserError  # noqa: E402
from astrojepa_cli.evaluate.explore import diagnostics  # noqa: E402
from astrojepa_cli.evaluate.features import extract  # noqa: E402
from astrojepa_cli.evaluate.probes.frozen_protocol import DRAWS, score_features  # noqa: E402
from astrojepa_cli.runs import run_stretch  # noqa: E402
from astrojepa_cli.train import budget  # noqa: E402
from diagnosis.figure import plot  # noqa: E402
from diagnosis.measures import CORRELATED_COMPONENTS, REMOVED, balanced, describe  # noqa: E402
from diagnosis.sources import resolve_run, trained_head  # noqa: E402
from registry.objective import build_encoder  # noqa: E402


def progress(started: float, what: str) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run id or folder (or, with --sweep, a row key such as base/gz1-48/seed0)")
    parser.add_argument("--data", required=True, help="labelled store to diagnose on")
    parser.add_argument("--root", type=Path, default=None, help="astrojepa home (default: $ASTROJEPA_HOME)")
    parser.add_argument("--sweep", type=Path, default=None, help="sweep output folder whose rows.jsonl names RUN")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--figure", type=Path, required=True, help="PNG figure to write")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--remove", type=int, nargs="+", default=list(REMOVED),
                        help="numbers of top principal components to project out before probing (0 = none)")
    parser.add_argument("--linear-removed", action="store_true",
                        help="also run the all-label linear probe with the top components removed (slow)")
    parser.add_argument("--plot-only", action="store_true", help="only redraw --figure from an existing --out JSON")
    parser.add_argument("--draws", type=int, default=DRAWS, help="draws of the 10-shot probe (the protocol's 5)")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads(args.out.read_text()), args.figure)
        return 0
    try:
        result = diagnose(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    plot(result, args.figure)
    print(summary_line(result))
    return 0


def diagnose(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    store_path = paths.existing_store(args.data, args.root)
    info = store.read_info(store_path)
    run, recorded = resolve_run(args.run, args.sweep, args.root, info.name)
    if args.draws != DRAWS:
        recorded = {}
    config = run.manifest["config"]
    img_size = config.get("img_size") or run.manifest["dataset"]["image_shape"][0]
    stretch = run_stretch(run.manifest)
    removed = tuple(sorted(set(args.remove) | {0}))

    progress(started, f"run {run.id} on {info.name}: embedding (D4) with the learned encoder")
    encoder = runs.load_encoder(run)
    head = trained_head(run, encoder, info.channels, img_size)
    if head is None:
        learned_features, projected = extract(encoder, store_path, args.device, stretch=stretch, tta="d4"), None
    else:
        learned_features, projected = diagnostics.embedding_and_head_features(encoder, head, store_path, args.device,
                                                                              stretch)
    progress(started, "embedding (D4) with random weights")
    torch.manual_seed(0)
    random_encoder = build_encoder(config["arch"], info.channels, img_size, config.get("patch_size"))
    random_features = extract(random_encoder, store_path, args.device, stretch=stretch, tta="d4")
    embedded_s = time.perf_counter() - started

    progress(started, "image properties")
    properties = diagnostics.image_properties(store_path, img_size, stretch)
    progress(started, "spectra, correlations and probes")
    result = {
        "dataset": info.name,
        "run": {"run_id": run.id, "ref": args.run, "loss": config["loss"], "arch": config["arch"], "img_size": img_size,
                "steps": run.manifest.get("steps"), "trained_on": run.manifest["dataset"]["name"],
                "config": config},
        "protocol": {"tta": "d4", "random_seed": 0, "few_shot_draws": args.draws, "linear_removed": args.linear_removed,
                     "correlated_components": CORRELATED_COMPONENTS, "removed_components": list(removed),
                     "pca_for_removal": "fitted on the train split",
                     "raw_scores_from_sweep": sorted(recorded)},
        "properties": {name: {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
                              "p90": float(np.percentile(v, 90))} for name, v in properties.items()},
        "property_correlations": diagnostics.property_correlations(properties),
        "learned": describe(learned_features, properties, info.classes, removed, args.draws, args.linear_removed,
                            recorded.get("learned")),
        "random_weights": describe(random_features, properties, info.classes, removed, args.draws,
                                   args.linear_removed, recorded.get("random_weights")),
        "temperature": diagnostics.temperature_trajectory(run.metrics_path),
    }
    if projected is not None:
        progress(started, "probes of the projector output")
        result["projector"] = {"spectrum": diagnostics.spectrum(projected.embeddings),
                               "correlations": diagnostics.component_correlations(projected.embeddings, properties,
                                                                                  CORRELATED_COMPONENTS),
                               "scores": score_features(projected, info.classes, draws=args.draws)}
    result["timing"] = {"embed_s": round(embedded_s, 1), "total_s": round(time.perf_counter() - started, 1),
                        "machine": budget.machine(), "load_average": os.getloadavg()[0]}
    result["command"] = " ".join(["python", "benchmarks/diagnose.py", *sys.argv[1:]])
    result["time"] = runs.now()
    return result


def summary_line(result: dict) -> str:
    parts = [f"{result['dataset']}:"]
    for name, key in (("learned", "learned"), ("random", "random_weights")):
        block = result[key]
        parts.append(f"{name} RankMe {block['spectrum']['rankme']:.1f} "
                     f"10-shot {balanced(block['scores_removed']['0'], '10-shot')[0]:.3f} "
                     f"linear {balanced(block['scores_removed']['0'], 'linear')[0]:.3f};")
    if "projector" in result:
        parts.append(f"projector linear {balanced(result['projector']['scores'], 'linear')[0]:.3f}")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
