"""Quality on real galaxies: self-supervised features against the baselines, in one run.

For each method: pretrain within a wall-clock budget, then score the frozen
encoder with the linear probe, the kNN probe and a 10-shot probe (5 draws).
In the same run, on the same store and split:

* raw pixels -> PCA(128) -> the same linear probe;
* the same architecture with random weights -> the same probes;
* the same architecture trained supervised from scratch (class-weighted
  cross-entropy, the same flips / 90° rotations / crops) within the same budget
  on all train labels;
* and on the 10-shot probe's labelled images (mean over its 5 draws), as
  ``astrojepa probe --shots 10 --scratch`` trains it
  (:mod:`astrojepa_cli.evaluate.probes.scratch_shots`).

Usage::

    python benchmarks/quality.py --data gz1 --budget-minutes 30 --methods lejepa,ijepa,ijepa-sigreg,simclr \\
        --arch resnet18 --out quality.json

Prints a markdown table of balanced accuracies on the test split; the JSON holds everything.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from astrojepa_cli import paths, runs
from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import Features, extract
from astrojepa_cli.evaluate.probes.frozen_protocol import (
    DRAWS, SHOTS, pixel_features, random_weights_scores, score_features,
)
from astrojepa_cli.evaluate.probes.scratch_shots import scratch_shots
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining
from astrojepa_cli.evaluate.probes.linear import classification_metrics
from astrojepa_cli.train.config import PretrainConfig, read_config_file
from astrojepa_cli.train.loop import pretrain
from astrojepa_cli.train.method_options import options_for
from registry.objective import build_encoder
from astrojepa_cli.train.presets import resolve_config
from registry.views import ViewSpec, centre_view, dihedral_views, random_views


def budgeted_pretrain(config: PretrainConfig, budget_s: float, root: Path | None) -> dict:
    """Pretrain for the steps that fit in ``budget_s`` (``pretrain --budget`` calibrates them)."""
    started = time.perf_counter()
    # The benchmark pretrains on the train split alone: no test image is seen, even unlabelled.
    result = pretrain(replace(config, budget=f"{budget_s:.0f}s", train_splits=("train",)), root=root, progress=False)
    manifest = runs.open_run(result.run_id, root).manifest
    return {"run_id": result.run_id, "steps": result.steps, "seconds": time.perf_counter() - started,
            "images_per_second": result.images_per_second, "final_loss": result.final_loss,
            "effective_rank": (manifest["epochs"] or [{}])[-1].get("effective_rank"),
            "budget_plan": manifest.get("budget_plan")}


def headline_scores(scores: dict[str, dict]) -> dict:
    """The frozen protocol's balanced accuracies (and the linear probe's accuracy) under flat keys."""
    few = scores[f"{SHOTS}-shot"]
    return {"linear": scores["linear"]["balanced_accuracy"], "linear_accuracy": scores["linear"]["accuracy"],
            "linear_macro_f1": scores["linear"]["macro_f1"], "knn": scores["knn-20"]["balanced_accuracy"],
            f"{SHOTS}_shot": few["balanced_accuracy"], f"{SHOTS}_shot_std": few["balanced_accuracy_std"]}


def frozen_scores(features: Features, classes: list[str]) -> dict:
    return headline_scores(score_features(features, classes))


def supervised_from_scratch(config: PretrainConfig, store_path: Path, train_rows: np.ndarray, budget_s: float,
                            seed: int, device: torch.device, tta: str) -> dict:
    """The same encoder + a linear head, class-weighted cross-entropy, augmented views, for ``budget_s``.

    With ``tta="d4"`` the test prediction averages the class probabilities of the 8 rotated/flipped
    copies, as the frozen probes average embeddings.
    """
    info = store.read_info(store_path)
    arrays = store.load(store_path, with_images=False)
    img_size = config.img_size or info.image_shape[0]
    torch.manual_seed(seed)
    encoder = build_encoder(config.arch, info.channels, img_size, config.patch_size).to(device)
    head = torch.nn.Linear(encoder.embed_dim, len(info.classes)).to(device)
    parameters = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=0.05)
    data = loader.DeviceImages(store_path, device, train_rows, stretch=config.stretch)
    labels = torch.as_tensor(arrays.labels[train_rows], device=device)
    counts = torch.bincount(labels, minlength=len(info.classes)).float()
    weights = counts.sum() / (len(info.classes) * counts.clamp_min(1))
    view = ViewSpec(1, img_size, scale=(0.5, 1.0))
    generator = torch.Generator(device=device).manual_seed(seed)
    batch = min(config.batch_size, len(train_rows))
    deadline, step = time.perf_counter() + budget_s, 0
    encoder.train()
    while time.perf_counter() < deadline:
        picked = torch.randint(0, len(train_rows), (batch,), generator=generator, device=device)
        logits = head(encoder(random_views(data.batch(picked), view, generator)))
        loss = F.cross_entropy(logits, labels[picked], weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
    encoder.eval()
    test_rows = np.flatnonzero((arrays.split == "test") & (arrays.labels >= 0))
    test = loader.DeviceImages(store_path, device, test_rows, stretch=config.stretch)

    def predict(images: torch.Tensor) -> torch.Tensor:
        copies = dihedral_views(images) if tta == "d4" else [images]
        return torch.stack([head(encoder(copy)).softmax(1) for copy in copies]).mean(0).argmax(1)

    with torch.no_grad():
        positions = torch.arange(len(test_rows), device=device)
        predicted = torch.cat([predict(centre_view(test.batch(chunk), img_size)) for chunk in positions.split(256)])
    metrics = classification_metrics(arrays.labels[test_rows], predicted.cpu().numpy(), info.classes)
    return {"balanced_accuracy": metrics["balanced_accuracy"], "accuracy": metrics["accuracy"], "steps": step}


OVERRIDES = ("arch", "img_size", "batch_size", "lam", "lr", "local_views", "global_scale", "stretch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="gz1")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--methods", default="lejepa")
    parser.add_argument("--preset", default=None, help="Start from this pretrain preset (e.g. small-cpu).")
    parser.add_argument("--config", type=Path, default=None, help="Pretrain config file (TOML or JSON) over the preset.")
    parser.add_argument("--arch", default=None)
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lam", type=float, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--local-views", type=int, default=None)
    parser.add_argument("--global-scale", type=float, nargs=2, default=None)
    parser.add_argument("--stretch", default=None)
    parser.add_argument("--tta", default="d4", choices=("none", "d4"),
                        help="Average frozen embeddings (and supervised logits) over the 8 rotations/flips.")
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--few-shot-steps", type=int, default=ScratchTraining.steps,
                        help="Full-batch steps of each 10-labels-per-class supervised draw (probe --scratch).")
    parser.add_argument("--no-baselines", action="store_true", help="Score the methods only (recipe search).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("quality.json"))
    args = parser.parse_args()
    store_path = paths.existing_store(args.data, args.root)
    classes = store.read_info(store_path).classes
    device = torch.device(args.device)
    budget_s = args.budget_minutes * 60
    flags = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    values = resolve_config(read_config_file(args.config) if args.config else {},
                            {**flags, **({"preset": args.preset} if args.preset else {})})
    base = PretrainConfig(**{**values, "data": args.data, "device": args.device, "seed": 0})
    shared_config = {k: v for k, v in base.to_json().items() if k != "loss"}  # --methods sets the loss
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "config": shared_config, "methods": {},
                     "baselines": {}}

    for method in args.methods.split(","):
        method_config = PretrainConfig(**options_for(method, {**values, "data": args.data, "device": args.device,
                                                              "seed": 0, "loss": method}))
        trained = budgeted_pretrain(method_config, budget_s, args.root)
        run = runs.open_run(trained["run_id"], args.root)
        scores = score_features(extract(runs.load_encoder(run), store_path, device, stretch=base.stretch,
                                        tta=args.tta), classes)
        results["methods"][method] = {**trained, **headline_scores(scores)}
        print(json.dumps({method: results["methods"][method]}), flush=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.no_baselines:
        return

    img_size = base.img_size or store.read_info(store_path).image_shape[0]
    results["baselines"]["pixels_pca128"] = frozen_scores(pixel_features(store_path, img_size, args.tta,
                                                                         stretch=base.stretch), classes)
    results["baselines"]["random_init"] = headline_scores(random_weights_scores(
        lambda: build_encoder(base.arch, store.read_info(store_path).channels, img_size, base.patch_size), 0,
        store_path, device, base.stretch,
        lambda encoder: extract(encoder, store_path, device, stretch=base.stretch, tta=args.tta), classes))
    arrays = store.load(store_path, with_images=False)
    train_rows = np.flatnonzero((arrays.split == "train") & (arrays.labels >= 0))
    results["baselines"]["supervised_all_labels"] = supervised_from_scratch(base, store_path, train_rows, budget_s, 0,
                                                                           device, args.tta)
    info = store.read_info(store_path)
    img_size = base.img_size or info.image_shape[0]
    results["baselines"][f"supervised_{SHOTS}_shot"] = scratch_shots(
        lambda draw: build_encoder(base.arch, info.channels, img_size, base.patch_size), store_path, classes, SHOTS,
        DRAWS, device, base.stretch, args.tta, ScratchTraining(steps=args.few_shot_steps))
    args.out.write_text(json.dumps(results, indent=2))

    print(f"\n| features | linear probe | kNN | {SHOTS}-shot (mean of {DRAWS}) |")
    print("|---|---|---|---|")
    for method, scores in results["methods"].items():
        print(f"| {method} ({base.arch}, {scores['steps']} steps) | {scores['linear']:.3f} | {scores['knn']:.3f} | "
              f"{scores[f'{SHOTS}_shot']:.3f} ± {scores[f'{SHOTS}_shot_std']:.3f} |")
    for name in ("pixels_pca128", "random_init"):
        scores = results["baselines"][name]
        print(f"| {name} | {scores['linear']:.3f} | {scores['knn']:.3f} | "
              f"{scores[f'{SHOTS}_shot']:.3f} ± {scores[f'{SHOTS}_shot_std']:.3f} |")
    supervised = results["baselines"]["supervised_all_labels"]
    few_shot = results["baselines"][f"supervised_{SHOTS}_shot"]
    print(f"| supervised from scratch ({base.arch}) | {supervised['balanced_accuracy']:.3f} (all labels) | - | "
          f"{few_shot['balanced_accuracy']:.3f} ± {few_shot['balanced_accuracy_std']:.3f} |")


if __name__ == "__main__":
    main()
