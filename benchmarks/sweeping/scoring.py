"""One sweep job: pretrain a recipe (resumably, or reuse a shared pretraining), score it, and score
the random-weights network and the pixels it is compared with."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from astrojepa_cli import paths, runs
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import extract, layer_normed
from astrojepa_cli.evaluate.probes.frozen_protocol import (
    DRAWS, SHOTS, pixel_features, random_weights_scores, score_features,
)
from astrojepa_cli.evaluate.probes.scratch_shots import scratch_shots
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining
from astrojepa_cli.train import budget
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.loop import pretrain
from registry.objective import build_encoder

from sweeping.baseline_keys import baseline_key, baselines_of
from sweeping.recipes import Sweep, job_key, recipe_config, split_probe_options
from sweeping.results import Results

# Options that make a recipe, as opposed to where and how it runs.
NOT_RECIPE = ("data", "seed", "device", "log_every", "save_every", "keep_encoders", "budget")


def _pretrain_resumably(config: PretrainConfig, key: str, results: Results, root: Path | None):
    """Pretrain ``config``, or resume the run this job left interrupted; returns the run and wall/CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    previous = results.in_flight().get(key)
    if previous:
        try:
            run = runs.open_run(previous, root)
            if run.manifest.get("status") == "completed":  # stopped while scoring: score it now
                return run, None, None
            result = pretrain(config, root=root, resume=previous, progress=False)
        except UserError as exc:
            print(f"[{key}] cannot resume {previous} ({exc}); starting again", flush=True)
            result = pretrain(config, root=root, progress=False)
    else:
        result = pretrain(config, root=root, progress=False)
    results.set_in_flight(key, result.run_id)
    if result.status == "interrupted":
        raise KeyboardInterrupt
    if result.status != "completed":
        raise UserError(f"[{key}] pretraining {result.status} (run {result.run_id})")
    cpu_s = (time.process_time() - cpu) / torch.get_num_threads()
    return runs.open_run(result.run_id, root), time.perf_counter() - wall, cpu_s


def same_pretraining(results: Results, options: dict, dataset: str, seed: int, root: Path | None) -> dict | None:
    """A finished row whose pretraining is this recipe's (it differs only in how it is probed) and whose
    run is still in the run store (a sweep continued on another machine, or after ``runs rm``, has lost it)."""
    pretraining = split_probe_options(options)[0]
    return next((row for row in results.rows() if row["kind"] == "recipe" and row["dataset"] == dataset
                 and row["seed"] == seed and split_probe_options(row["options"])[0] == pretraining
                 and _in_store(row["run_id"], root)), None)


def _in_store(run_id: str, root: Path | None) -> bool:
    try:
        runs.open_run(run_id, root)
    except UserError:
        return False
    return True


def score_recipe(sweep: Sweep, name: str, options: dict, dataset: str, seed: int, results: Results,
                 root: Path | None, shared: dict | None) -> dict:
    """Pretrain (or reuse ``shared``, the row whose pretraining this recipe shares) and score one job."""
    key = job_key(name, dataset, seed)
    config = recipe_config(sweep, options, dataset, seed, name=name)
    if shared:
        run, wall_s, cpu_s = runs.open_run(shared["run_id"], root), shared["pretrain_wall_s"], shared["pretrain_cpu_s"]
    else:
        run, wall_s, cpu_s = _pretrain_resumably(config, key, results, root)
    store_path = paths.existing_store(dataset, root)
    classes = store.read_info(store_path).classes
    probing = split_probe_options(options, config.embedding_pool)[1]
    features = extract(runs.load_encoder(run), store_path, sweep.device, pool=probing["probe_pool"],
                       stretch=config.stretch, tta=sweep.tta)
    scores = score_features(layer_normed(features) if probing["probe_norm"] == "layernorm" else features, classes)
    manifest = run.manifest
    last_epoch = (manifest.get("epochs") or [{}])[-1]
    recorded = manifest["config"]
    row = {
        "kind": "recipe", "key": key, "name": name, "dataset": dataset, "seed": seed, "run_id": run.id,
        "options": {k: v for k, v in options.items()},
        "config": {k: v for k, v in recorded.items() if k not in NOT_RECIPE},
        "steps": manifest.get("steps"), "epochs": round(manifest.get("steps", 0) / max(
            1, manifest["dataset"]["n_train_images"] // recorded["batch_size"]), 2),
        "budget_plan": manifest.get("budget_plan"), "pretrain_wall_s": wall_s and round(wall_s, 1),
        "pretrain_cpu_s": cpu_s and round(cpu_s, 1), "compute_s": _compute_seconds(manifest, sweep.clock, wall_s, cpu_s), "final_loss": (manifest.get("result") or {}).get("final_loss"),
        "effective_rank": last_epoch.get("effective_rank"),
        "monitors": {k: v for k, v in last_epoch.items() if k.startswith("shortcut_")}, "scores": scores,
        "baselines": {"random_weights": baseline_key("random", dataset, recorded, seed, probing),
                      "pixels": baseline_key("pixels", dataset, recorded, 0, probing)},
        "probe": probing, "pretraining_shared_with": shared["key"] if shared else None,
        "tta": sweep.tta, "machine": budget.machine(), "time": runs.now(),
    }
    results.append(row)
    results.set_in_flight(key, None)
    return row


def _compute_seconds(manifest: dict, clock: str, wall_s: float | None, cpu_s: float | None) -> float | None:
    """Pretraining compute in the sweep's clock: the budget plan's own estimate where there is one
    (calibration + steps + epoch ends, immune to what else ran), else the measured time."""
    plan = manifest.get("budget_plan")
    if plan:
        steps = manifest.get("steps") or plan["steps"]
        return round(plan["calibration_s"] + steps * plan["seconds_per_step"]
                     + steps / plan["steps_per_epoch"] * plan["epoch_end_s"], 1)
    measured = cpu_s if clock == "cpu" else wall_s
    return None if measured is None else round(measured, 1)


def score_baselines(sweep: Sweep, row: dict, results: Results, root: Path | None) -> None:
    """Score (once) the random-weights network and the pixels that ``row`` is compared with, probed as
    ``row`` is (the same pooling and feature normalisation; pixels have no stages to pool), and the
    same architecture trained from scratch on the few-shot probe's labelled images."""
    store_path = paths.existing_store(row["dataset"], root)
    info = store.read_info(store_path)
    config, probing = row["config"], row["probe"]
    img_size = config.get("img_size") or info.image_shape[0]
    stretch = config.get("stretch", "none")
    for kind, key in baselines_of(row).items():
        if results.find(key):
            continue
        print(f"[{row['key']}] scoring the baseline {key}", flush=True)
        if kind == "scratch":
            fresh = lambda draw: build_encoder(config["arch"], info.channels, img_size, config["patch_size"])  # noqa: E731
            scores = {f"{SHOTS}-shot": scratch_shots(fresh, store_path, info.classes, SHOTS, DRAWS, sweep.device,
                                                     stretch, sweep.tta, ScratchTraining(steps=sweep.scratch_steps))}
            results.append({"kind": "baseline", "key": key, "baseline": kind, "dataset": row["dataset"],
                            "scores": scores, "tta": sweep.tta, "time": runs.now()})
            continue
        normed = layer_normed if probing["probe_norm"] == "layernorm" else (lambda features: features)
        if kind == "random_weights":
            scores = random_weights_scores(
                lambda: build_encoder(config["arch"], info.channels, img_size, config["patch_size"]), row["seed"],
                store_path, sweep.device, stretch, lambda encoder: normed(extract(
                    encoder, store_path, sweep.device, pool=probing["probe_pool"], stretch=stretch, tta=sweep.tta)),
                info.classes)
        else:
            scores = score_features(normed(pixel_features(store_path, img_size, sweep.tta, stretch=stretch)),
                                    info.classes)
        results.append({"kind": "baseline", "key": key, "baseline": kind, "dataset": row["dataset"],
                        "scores": scores, "tta": sweep.tta, "time": runs.now()})
