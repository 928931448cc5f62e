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

It writes one JSON file and one multi-panel figure.
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
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli import paths, runs  # noqa: E402
from astrojepa_cli.atomic import write_json  # noqa: E402
from astrojepa_cli.data import store  # noqa: E402
from astrojepa_cli.errors import UserError  # noqa: E402
from astrojepa_cli.evaluate.explore import diagnostics  # noqa: E402
from astrojepa_cli.evaluate.features import Features, extract  # noqa: E402
from astrojepa_cli.runs import run_stretch  # noqa: E402
from astrojepa_cli.evaluate.probes.frozen_protocol import (  # noqa: E402
    DRAWS, KNN_K, METRICS, SHOTS, score_features)
from astrojepa_cli.evaluate.probes.knn import knn_probe  # noqa: E402
from astrojepa_cli.evaluate.probes.label_efficiency import shots_curve  # noqa: E402
from astrojepa_cli.train import budget  # noqa: E402
from astrojepa_cli.train.checkpoint import STATE_TENSORS  # noqa: E402
from astrojepa_cli.train.config import PretrainConfig  # noqa: E402
from astrojepa_cli.train.loop import build_objective, create_plugin  # noqa: E402

REMOVED = (0, 1, 5, 10)
CORRELATED_COMPONENTS = 5
PROBES = ("linear", "knn-20", "10-shot")
PROPERTY_LABELS = {"flux": "flux above sky", "size": "apparent size", "background": "background level",
                   "centring": "centring offset"}


def resolve_run(ref: str, sweep: Path | None, root: Path | None, dataset: str) -> tuple[runs.Run, dict]:
    """The run named by ``ref`` (a run id or folder, or with ``sweep`` the key of one of its finished rows),
    and the frozen-protocol scores that sweep already recorded on ``dataset`` for it (``learned``) and
    for its random-weights baseline (``random_weights``), where it has them."""
    if sweep is None:
        return runs.open_run(ref, root), {}
    rows_path = sweep / "rows.jsonl"
    lines = rows_path.read_text().splitlines() if rows_path.exists() else []
    rows = [json.loads(line) for line in lines if line.strip()]
    found = next((row for row in rows if row.get("kind") == "recipe" and row.get("key") == ref), None)
    if found is None:
        raise UserError(f"no finished row '{ref}' in {rows_path}")
    recorded = {}
    if found["dataset"] == dataset and found.get("tta") == "d4":
        recorded["learned"] = found["scores"]
        baseline = next((row for row in rows if row.get("key") == found["baselines"]["random_weights"]), None)
        if baseline is not None:
            recorded["random_weights"] = baseline["scores"]
    return runs.open_run(found["run_id"], root), recorded


def progress(started: float, what: str) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {what}", file=sys.stderr, flush=True)


def trained_head(run: runs.Run, encoder: torch.nn.Module, channels: int, img_size: int) -> torch.nn.Module | None:
    """The run's projector, rebuilt with its objective and loaded from ``state.safetensors`` (None if it has none)."""
    config = PretrainConfig.from_json(run.manifest["config"])
    objective = build_objective(config, channels, img_size)
    if not hasattr(objective, "projector"):
        return None
    tensors = runs.load_tensors(run.dir / STATE_TENSORS)
    prefix = "objective."
    objective.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    with safe_open(str(run.dir / STATE_TENSORS), framework="pt") as handle:
        state_step = (handle.metadata() or {}).get("step")
    if encoder.saved_step is not None and state_step is not None and encoder.saved_step != int(state_step):
        raise UserError(f"run {run.id}: encoder file at step {encoder.saved_step}, checkpoint at step {state_step}")
    return objective.projector


def removed_scores(features: Features, classes: list[str], removed: tuple[int, ...], draws: int,
                   linear_removed: bool, recorded: dict | None = None) -> dict[str, dict]:
    """The protocol's scores with the top ``k`` principal components projected out, for each ``k``.

    At ``k = 0`` (the raw embedding) every probe, or the ``recorded`` scores of the same protocol
    where a sweep has them; otherwise the 10-shot and kNN probes, and the all-label linear probe
    (whose search for C costs most of the time) only with ``linear_removed``.
    """
    train = features.split == "train"
    scored = {}
    for k in removed:
        if k == 0 and recorded is not None:
            scored["0"] = recorded
            continue
        kept = Features(diagnostics.remove_top_components(features.embeddings, k, fit_rows=train), features.labels,
                        features.ids, features.split, features.targets)
        if k == 0 or linear_removed:
            scored[str(k)] = score_features(kept, classes, draws=draws)
            continue
        few = shots_curve(kept, classes, [SHOTS], seeds=draws)["curve"][0]
        knn = knn_probe(kept, classes, k=KNN_K)
        scored[str(k)] = {f"knn-{KNN_K}": {m: knn[m] for m in METRICS},
                          f"{SHOTS}-shot": {**{m: few[m] for m in METRICS},
                                            **{f"{m}_std": few.get(f"{m}_std", 0.0) for m in METRICS},
                                            "draws": draws}}
    return scored


def describe(features: Features, properties: dict[str, np.ndarray], classes: list[str],
             removed: tuple[int, ...], draws: int, linear_removed: bool, recorded: dict | None = None) -> dict:
    return {"spectrum": diagnostics.spectrum(features.embeddings),
            "correlations": diagnostics.component_correlations(features.embeddings, properties,
                                                               CORRELATED_COMPONENTS),
            "scores_removed": removed_scores(features, classes, removed, draws, linear_removed, recorded)}


def balanced(scores: dict, probe: str) -> tuple[float, float]:
    cell = scores[probe]
    return cell["balanced_accuracy"], cell.get("balanced_accuracy_std", 0.0)


def plot(result: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = result["dataset"]
    learned, random_ = result["learned"], result["random_weights"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    fig.suptitle(f"Diagnosis of {result['run']['loss']} {result['run']['arch']} "
                 f"({result['run']['steps']} steps, {result['run']['img_size']} px) on {dataset}", fontsize=13)

    ax = axes[0, 0]
    for name, block, colour in (("learned", learned, "C0"), ("random weights", random_, "C1")):
        ratios = block["spectrum"]["explained_variance_ratio"]
        ax.semilogy(np.arange(1, len(ratios) + 1), ratios, color=colour,
                    label=f"{name} (RankMe {block['spectrum']['rankme']:.1f}, centred "
                          f"{block['spectrum']['rankme_centred']:.1f}; top-5 share "
                          f"{block['spectrum']['variance_share']['top5']:.2f})")
    if "projector" in result:
        ratios = result["projector"]["spectrum"]["explained_variance_ratio"]
        ax.semilogy(np.arange(1, len(ratios) + 1), ratios, color="C2", linestyle="--",
                    label=f"learned projector output (RankMe {result['projector']['spectrum']['rankme']:.1f}, "
                          f"centred {result['projector']['spectrum']['rankme_centred']:.1f})")
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of variance")
    ax.set_title(f"Embedding spectrum, {dataset}")
    ax.legend(fontsize=7.5, loc="upper right")

    for ax, (name, block) in zip(axes[0, 1:], (("learned", learned), ("random weights", random_))):
        corr = block["correlations"]
        rho = np.array(corr["rho"])
        image = ax.imshow(rho, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(corr["properties"])), [PROPERTY_LABELS.get(p, p) for p in corr["properties"]],
                      rotation=20)
        ax.set_yticks(range(len(corr["components"])), corr["components"])
        for (i, j), value in np.ndenumerate(rho):
            ax.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=9,
                    color="white" if abs(value) > 0.6 else "black")
        ax.set_xlabel("image property")
        ax.set_ylabel("principal component of the embedding")
        ax.set_title(f"Spearman ρ, {name} features, {dataset}")
        fig.colorbar(image, ax=ax, fraction=0.046, label="Spearman ρ")

    ax = axes[1, 0]
    removed = [int(k) for k in learned["scores_removed"]]
    for name, block, colour in (("learned", learned, "C0"), ("random weights", random_, "C1")):
        few = [balanced(block["scores_removed"][str(k)], "10-shot") for k in removed]
        knn = [balanced(block["scores_removed"][str(k)], "knn-20")[0] for k in removed]
        ax.errorbar(removed, [m for m, _ in few], yerr=[s for _, s in few], color=colour, marker="o", capsize=3,
                    label=f"{name}: 10 labels per class")
        ax.plot(removed, knn, color=colour, marker="s", linestyle=":", label=f"{name}: kNN, k = 20")
        linear = [(k, balanced(block["scores_removed"][str(k)], "linear")[0]) for k in removed
                  if "linear" in block["scores_removed"][str(k)]]
        ax.plot(*zip(*linear), color=colour, marker="^", linestyle="--", label=f"{name}: linear")
    ax.set_xticks(removed)
    ax.set_xlabel("top principal components removed")
    ax.set_ylabel("balanced accuracy (test split)")
    ax.set_title(f"Probes without the top components, {dataset}")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.45 * (high - low))  # room for the legend above the curves
    ax.legend(fontsize=7, loc="upper center", ncol=2)

    ax = axes[1, 1]
    if "projector" in result:
        rows = [("random weights, embedding", random_["scores_removed"]["0"], "C1"),
                ("learned, encoder embedding", learned["scores_removed"]["0"], "C0"),
                ("learned, projector output", result["projector"]["scores"], "C2")]
        width = 0.27
        for offset, (name, scores, colour) in zip((-width, 0.0, width), rows):
            values = [balanced(scores, probe) for probe in PROBES]
            bars = ax.bar(np.arange(len(PROBES)) + offset, [m for m, _ in values], width,
                          yerr=[s for _, s in values], capsize=3, label=name, color=colour)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.set_xticks(range(len(PROBES)), ["linear (all labels)", "kNN, k = 20", "10 labels per class"])
        ax.set_ylabel("balanced accuracy (test split)")
        ax.set_ylim(0, 1.2)
        ax.set_title(f"Embedding against projector output, {dataset}")
        ax.legend(fontsize=8, loc="upper center", ncol=2)
    else:
        ax.text(0.5, 0.5, "this objective has no projector", ha="center", va="center")
        ax.set_axis_off()

    ax = axes[1, 2]
    trajectory = result["temperature"]
    if trajectory["step"]:
        first, last = trajectory["temperature"][0], trajectory["temperature"][-1]
        ax.plot(trajectory["step"], trajectory["temperature"], marker="o")
        # From zero, so a temperature that hardly moves looks flat.
        ax.set_ylim(0, 2 * max(trajectory["temperature"]))
        ax.annotate(f"{first:.4f} at step {trajectory['step'][0]} → {last:.4f} at step {trajectory['step'][-1]} "
                    f"({100 * (last / first - 1):+.1f} %)", xy=(0.5, 0.9), xycoords="axes fraction", ha="center",
                    fontsize=9)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("softmax temperature τ")
        ax.set_title(f"Learnable temperature during pretraining on {result['run']['trained_on']}")
    else:
        ax.text(0.5, 0.5, "no learnable temperature logged", ha="center", va="center")
        ax.set_axis_off()

    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    plt.close(fig)


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
    random_encoder = create_plugin("encoder", config["arch"], img_size=img_size, patch_size=config.get("patch_size"),
                                   in_chans=info.channels)
    random_encoder.input_size = img_size
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
