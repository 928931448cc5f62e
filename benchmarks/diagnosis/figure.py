"""The diagnosis figure: spectra, correlations, probes without the top components, embedding
against projector output, and the learnable temperature."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diagnosis.measures import balanced

PROBES = ("linear", "knn-20", "10-shot")
PROPERTY_LABELS = {"flux": "flux above sky", "size": "apparent size", "background": "background level",
                   "centring": "centring offset"}


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
