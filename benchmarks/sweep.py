"""Recipe sweeps: pretrain every config of a TOML list or grid within a budget, score each, rank them.

Usage::

    python benchmarks/sweep.py study.toml --out sweep-out/         # run (or resume) the sweep
    python benchmarks/sweep.py study.toml --out sweep-out/ --table  # only print the ranked table and plot

The TOML file::

    [sweep]
    datasets = ["gz1-48", "first-radio"]  # labelled stores; every recipe is pretrained and scored on each
    seeds = [0]                           # pretraining seeds
    budget = "3m"                         # per pretraining: a wall-clock budget (or steps = N, or epochs = N)
    clock = "cpu"                         # calibrate the budget in CPU time (fair on a shared machine)
    rank_by = "linear"                    # linear, knn-20 or 10-shot (balanced accuracy, mean over datasets)

    [base]                                # pretrain options every recipe starts from (any config key)
    loss = "simclr"
    arch = "resnet18"
    img_size = 32

    [[run]]                               # one recipe: a name and the options it changes
    name = "base"

    [[run]]
    name = "crop-0.5"
    global_scale = [0.5, 1.0]

    [[run]]                               # probed differently: shares the base's pretraining
    name = "base-last2-layernorm"
    probe_pool = "last2"                  # mean, cls or last2 (astrojepa probe --pool)
    probe_norm = "layernorm"              # standard or layernorm (astrojepa probe --feature-norm)

    [grid]                                # and/or: every combination of these lists, named key=value,...
    lam = [0.02, 0.1]
    proj_dim = [16, 64]

Every pretraining is scored with the frozen protocol of
:mod:`astrojepa_cli.evaluate.probes.frozen_protocol` (D4-averaged features; linear, kNN
and 10-shot probes; accuracy, balanced accuracy and macro-F1), and so are the
same network with random weights and the pixels, once per dataset and shape.
Each result is one JSON row appended to ``OUT/rows.jsonl``. A rerun skips the
rows already there and resumes an interrupted pretraining from its checkpoint,
so a sweep can be stopped (Ctrl-C) and continued at any time. At the end it
prints the ranked table and saves ``OUT/score-vs-compute.png``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

# OpenMP threads that spin while they wait burn CPU time whenever other jobs share the cores,
# which inflates CPU-clock budgets and slows everyone; passive waiting keeps CPU time per step
# what a quiet machine measures. It must be set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli import paths, runs  # noqa: E402
from astrojepa_cli.atomic import write_json  # noqa: E402
from astrojepa_cli.data import store  # noqa: E402
from astrojepa_cli.errors import UserError  # noqa: E402
from astrojepa_cli.evaluate.features import FEATURE_NORMS, POOLS, extract, layer_normed  # noqa: E402
from astrojepa_cli.evaluate.probes.frozen_protocol import pixel_features, score_features  # noqa: E402
from astrojepa_cli.train import budget  # noqa: E402
from astrojepa_cli.train.config import PretrainConfig, checked_values  # noqa: E402
from astrojepa_cli.train.loop import create_plugin, pretrain  # noqa: E402
from astrojepa_cli.train.presets import resolve_config  # noqa: E402

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROWS_FILE = "rows.jsonl"
STATE_FILE = "in-flight.json"
PLOT_FILE = "score-vs-compute.png"
RANKABLE = ("linear", "knn-20", "10-shot")
# Recipe keys that change how the features are probed, not how they are learnt; recipes that
# differ only in these share one pretraining. Values as for 'astrojepa probe --pool/--feature-norm'.
PROBE_OPTIONS = {"probe_pool": "mean", "probe_norm": "standard"}
# Options that make a recipe, as opposed to where and how it runs.
NOT_RECIPE = ("data", "seed", "device", "log_every", "save_every", "keep_encoders", "budget")


@dataclass
class Sweep:
    """A parsed sweep file: where to run, how long, and the recipes."""

    datasets: list[str]
    seeds: list[int]
    length: dict  # exactly one of {"budget": "3m"}, {"steps": N}, {"epochs": N}
    clock: str = "wall"
    rank_by: str = "linear"
    device: str = "cpu"
    tta: str = "d4"
    recipes: list[tuple[str, dict]] = field(default_factory=list)


def read_sweep(path: Path) -> Sweep:
    """Parse and check a sweep file; every recipe's options are checked as ``pretrain`` would."""
    if not path.exists():
        raise UserError(f"sweep file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"cannot parse {path}: {exc}") from None
    settings = raw.get("sweep", {})
    lengths = {k: settings[k] for k in ("budget", "steps", "epochs") if k in settings}
    if len(lengths) != 1:
        raise UserError(f"{path}: [sweep] needs exactly one of budget, steps or epochs")
    if not settings.get("datasets"):
        raise UserError(f"{path}: [sweep] needs datasets = [...] (labelled store names)")
    if settings.get("rank_by", "linear") not in RANKABLE:
        raise UserError(f"{path}: rank_by must be one of {', '.join(RANKABLE)}")
    if settings.get("clock", "wall") not in ("wall", "cpu"):
        raise UserError(f"{path}: clock must be 'wall' or 'cpu'")
    if "budget" in lengths:
        budget.parse_duration(lengths["budget"])
    sweep = Sweep(datasets=list(settings["datasets"]), seeds=list(settings.get("seeds", [0])), length=lengths,
                  clock=settings.get("clock", "wall"), rank_by=settings.get("rank_by", "linear"),
                  device=settings.get("device", "cpu"), tta=settings.get("tta", "d4"))
    base = raw.get("base", {})
    for entry in raw.get("run", []):
        entry = dict(entry)
        name = entry.pop("name", None) or ",".join(f"{k}={v}" for k, v in entry.items()) or "base"
        sweep.recipes.append((name, {**base, **entry}))
    grid = raw.get("grid", {})
    if grid:
        keys = sorted(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            choice = dict(zip(keys, values))
            sweep.recipes.append((",".join(f"{k}={v}" for k, v in choice.items()), {**base, **choice}))
    if not sweep.recipes:
        raise UserError(f"{path}: no recipes; add [[run]] entries or a [grid]")
    names = [name for name, _ in sweep.recipes]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: recipe names must be unique")
    for name, options in sweep.recipes:
        recipe_config(sweep, options, sweep.datasets[0], sweep.seeds[0], check_only=True, name=name)
    return sweep


def split_probe_options(options: dict) -> tuple[dict, dict]:
    """A recipe's pretrain options, and how its features are probed (:data:`PROBE_OPTIONS`, defaults filled)."""
    pretraining = {k: v for k, v in options.items() if k not in PROBE_OPTIONS}
    return pretraining, {k: options.get(k, default) for k, default in PROBE_OPTIONS.items()}


def recipe_config(sweep: Sweep, options: dict, dataset: str, seed: int, check_only: bool = False,
                  name: str = "") -> PretrainConfig:
    """The pretrain config of one recipe on one dataset and seed (preset < recipe options)."""
    pretraining, probing = split_probe_options(options)
    if probing["probe_pool"] not in POOLS or probing["probe_norm"] not in FEATURE_NORMS:
        raise UserError(f"recipe '{name}': probe_pool must be one of {', '.join(POOLS)} and probe_norm one of "
                        f"{', '.join(FEATURE_NORMS)}")
    values = resolve_config(checked_values(pretraining, f"recipe '{name}'"), {})
    config = PretrainConfig(**{**values, "data": dataset, "seed": seed, "device": sweep.device})
    length = sweep.length
    if "budget" in length:
        config = replace(config, budget=str(length["budget"]))
    elif "steps" in length:
        config = replace(config, max_steps=int(length["steps"]), epochs=10**6)
    else:
        config = replace(config, epochs=int(length["epochs"]))
    if check_only:
        config.validate()
    return config


class Results:
    """``rows.jsonl`` (one finished result per line) and the in-flight pretraining runs, in ``out``."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.rows_path, self.state_path = out / ROWS_FILE, out / STATE_FILE

    def rows(self) -> list[dict]:
        if not self.rows_path.exists():
            return []
        rows = []
        for line in self.rows_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; its job runs again
        return rows

    def find(self, key: str) -> dict | None:
        return next((row for row in self.rows() if row["key"] == key), None)

    def append(self, row: dict) -> None:
        with open(self.rows_path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def in_flight(self) -> dict:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def set_in_flight(self, key: str, run_id: str | None) -> None:
        state = self.in_flight()
        if run_id is None:
            state.pop(key, None)
        else:
            state[key] = run_id
        write_json(self.state_path, state)


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


def _same_pretraining(results: Results, options: dict, dataset: str, seed: int) -> dict | None:
    """A finished row whose pretraining is this recipe's (it differs only in how it is probed)."""
    pretraining = split_probe_options(options)[0]
    return next((row for row in results.rows() if row["kind"] == "recipe" and row["dataset"] == dataset
                 and row["seed"] == seed and split_probe_options(row["options"])[0] == pretraining), None)


def score_recipe(sweep: Sweep, name: str, options: dict, dataset: str, seed: int, results: Results,
                 root: Path | None, shared: dict | None) -> dict:
    """Pretrain (or reuse ``shared``, the row whose pretraining this recipe shares) and score one job."""
    key = f"{name}/{dataset}/seed{seed}"
    config = recipe_config(sweep, options, dataset, seed, name=name)
    if shared:
        run, wall_s, cpu_s = runs.open_run(shared["run_id"], root), shared["pretrain_wall_s"], shared["pretrain_cpu_s"]
    else:
        run, wall_s, cpu_s = _pretrain_resumably(config, key, results, root)
    store_path = paths.existing_store(dataset, root)
    classes = store.read_info(store_path).classes
    probing = split_probe_options(options)[1]
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
        "effective_rank": last_epoch.get("effective_rank"), "scores": scores,
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


def baseline_key(kind: str, dataset: str, config: dict, seed: int, probing: dict) -> str:
    """The key of a baseline row: what it embeds, at which size, and how it is probed (as the recipe is)."""
    img = config.get("img_size") or "store"
    probe = "".join(f"/{probing[k]}" for k in PROBE_OPTIONS if probing[k] != PROBE_OPTIONS[k]
                    and not (kind == "pixels" and k == "probe_pool"))
    if kind == "pixels":
        return f"pixels/{dataset}/{img}px/{config.get('stretch', 'none')}{probe}"
    return f"random/{dataset}/{config['arch']}/{img}px/p{config.get('patch_size')}/seed{seed}{probe}"


def score_baselines(sweep: Sweep, row: dict, results: Results, root: Path | None) -> None:
    """Score (once) the random-weights network and the pixels that ``row`` is compared with, probed as
    ``row`` is (the same pooling and feature normalisation; pixels have no stages to pool)."""
    store_path = paths.existing_store(row["dataset"], root)
    info = store.read_info(store_path)
    config, probing = row["config"], row["probe"]
    img_size = config.get("img_size") or info.image_shape[0]
    stretch = config.get("stretch", "none")
    for kind, key in row["baselines"].items():
        if results.find(key):
            continue
        if kind == "random_weights":
            torch.manual_seed(row["seed"])
            encoder = create_plugin("encoder", config["arch"], img_size=img_size, patch_size=config["patch_size"],
                                    in_chans=info.channels)
            encoder.input_size = img_size
            features = extract(encoder, store_path, sweep.device, pool=probing["probe_pool"], stretch=stretch,
                               tta=sweep.tta)
        else:
            features = pixel_features(store_path, img_size, sweep.tta, stretch=stretch)
        scores = score_features(layer_normed(features) if probing["probe_norm"] == "layernorm" else features,
                                info.classes)
        results.append({"kind": "baseline", "key": key, "baseline": kind, "dataset": row["dataset"],
                        "scores": scores, "tta": sweep.tta, "time": runs.now()})


def summary(sweep: Sweep, rows: list[dict]) -> list[dict]:
    """One line per recipe: per dataset the mean (± std over seeds) of each probe and the gain over random weights."""
    baselines = {row["key"]: row for row in rows if row["kind"] == "baseline"}
    lines = []
    for name, _ in sweep.recipes:
        mine = [r for r in rows if r["kind"] == "recipe" and r["name"] == name]
        if not mine:
            continue
        line: dict = {"name": name, "datasets": {}}
        for dataset in sweep.datasets:
            here = [r for r in mine if r["dataset"] == dataset]
            if not here:
                continue
            cell = {"seeds": len(here), "steps": float(np.mean([r["steps"] for r in here])),
                    "epochs": float(np.mean([r["epochs"] for r in here])),
                    "compute_s": float(np.mean([r["compute_s"] or 0.0 for r in here]))}
            for probe in RANKABLE:
                values = [r["scores"][probe]["balanced_accuracy"] for r in here]
                cell[probe], cell[f"{probe}_std"] = float(np.mean(values)), float(np.std(values))
                random_rows = [baselines.get(r["baselines"]["random_weights"]) for r in here]
                if all(random_rows):
                    cell[f"{probe}_random"] = float(np.mean([b["scores"][probe]["balanced_accuracy"]
                                                             for b in random_rows]))
                pixels = baselines.get(here[0]["baselines"]["pixels"])
                if pixels:
                    cell[f"{probe}_pixels"] = pixels["scores"][probe]["balanced_accuracy"]
            line["datasets"][dataset] = cell
        complete = len(line["datasets"]) == len(sweep.datasets)
        line["score"] = float(np.mean([c[sweep.rank_by] for c in line["datasets"].values()])) if complete else None
        lines.append(line)
    return sorted(lines, key=lambda line: -1 if line["score"] is None else line["score"], reverse=True)


def print_table(sweep: Sweep, lines: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recipes ranked by {sweep.rank_by} balanced accuracy (mean over datasets; "
                        f"Δ = over the same network with random weights)")
    table.add_column("#", justify="right")
    table.add_column("recipe")
    table.add_column("score", justify="right")
    for dataset in sweep.datasets:
        for label in ("epochs", "linear", "Δ rand", "10-shot", "Δ rand", "kNN"):
            table.add_column(f"{dataset} {label}" if label == "epochs" else label, justify="right")
    for rank, line in enumerate(lines, 1):
        cells = [str(rank), line["name"], "–" if line["score"] is None else f"{line['score']:.3f}"]
        for dataset in sweep.datasets:
            c = line["datasets"].get(dataset)
            if c is None:
                cells += ["–"] * 6
                continue
            cells += [f"{c['epochs']:.0f}", _mean_std(c, "linear"), _delta(c, "linear"), _mean_std(c, "10-shot"),
                      _delta(c, "10-shot"), f"{c['knn-20']:.3f}"]
        table.add_row(*cells)
    Console(width=max(160, 40 + 60 * len(sweep.datasets))).print(table)


def _mean_std(cell: dict, probe: str) -> str:
    return f"{cell[probe]:.3f}" + (f"±{cell[f'{probe}_std']:.3f}" if cell["seeds"] > 1 else "")


def _delta(cell: dict, probe: str) -> str:
    return f"{cell[probe] - cell[f'{probe}_random']:+.3f}" if f"{probe}_random" in cell else "–"


def plot_score_vs_compute(sweep: Sweep, lines: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(sweep.datasets), figsize=(5.5 * len(sweep.datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], sweep.datasets):
        cells = [(line["name"], line["datasets"][dataset]) for line in lines if dataset in line["datasets"]]
        for name, cell in cells:
            ax.errorbar(cell["compute_s"] / 60, cell[sweep.rank_by], yerr=cell[f"{sweep.rank_by}_std"], fmt="o",
                        alpha=0.8)
            ax.annotate(name, (cell["compute_s"] / 60, cell[sweep.rank_by]), fontsize=6, alpha=0.8)
        randoms = [c[f"{sweep.rank_by}_random"] for _, c in cells if f"{sweep.rank_by}_random" in c]
        if randoms:
            ax.axhline(float(np.mean(randoms)), color="grey", linestyle="--", label="random weights (mean)")
            ax.legend(loc="lower right", fontsize=7)
        clock = "CPU minutes per thread" if sweep.clock == "cpu" else "wall-clock minutes"
        ax.set_xlabel(f"pretraining compute ({clock})")
        ax.set_ylabel(f"{sweep.rank_by} probe, balanced accuracy")
        ax.set_title(dataset)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)


def run_sweep(sweep: Sweep, out: Path, root: Path | None) -> list[dict]:
    results = Results(out)
    os.environ[budget.CLOCK_VARIABLE] = sweep.clock
    for name, options in sweep.recipes:
        for dataset in sweep.datasets:
            for seed in sweep.seeds:
                key = f"{name}/{dataset}/seed{seed}"
                row = results.find(key)
                if row is None:
                    shared = _same_pretraining(results, options, dataset, seed)
                    print(f"[{key}] " + (f"scoring the pretraining of {shared['key']}" if shared else "pretraining"),
                          flush=True)
                    row = score_recipe(sweep, name, options, dataset, seed, results, root, shared)
                    scores = row["scores"]
                    print(f"[{key}] {row['steps']} steps ({row['epochs']} epochs): linear "
                          f"{scores['linear']['balanced_accuracy']:.3f}, 10-shot "
                          f"{scores['10-shot']['balanced_accuracy']:.3f}, kNN {scores['knn-20']['balanced_accuracy']:.3f}",
                          flush=True)
                score_baselines(sweep, row, results, root)
    return results.rows()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path, help="TOML sweep file")
    parser.add_argument("--out", type=Path, default=Path("sweep-out"), help="Folder of rows.jsonl and the plot.")
    parser.add_argument("--root", type=Path, default=None, help="astrojepa home (data/ and runs/).")
    parser.add_argument("--table", action="store_true", help="Only rank what is in OUT/rows.jsonl and plot it.")
    args = parser.parse_args()
    try:
        sweep = read_sweep(args.sweep)
        rows = Results(args.out).rows() if args.table else run_sweep(sweep, args.out, args.root)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    lines = summary(sweep, rows)
    print_table(sweep, lines)
    if lines:
        plot_score_vs_compute(sweep, lines, args.out / PLOT_FILE)
    (args.out / "summary.json").write_text(json.dumps(lines, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
