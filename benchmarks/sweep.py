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
    scratch_steps = 200                   # steps of the from-scratch 10-shot baseline (default 200)

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
same network with random weights and the pixels, once per dataset and shape. The
same network trained from scratch on the 10-shot probe's labelled images
(:mod:`astrojepa_cli.evaluate.probes.scratch_shots`) is the few-shot baseline.
Each result is one JSON row appended to ``OUT/rows.jsonl``. A rerun skips the
rows already there and resumes an interrupted pretraining from its checkpoint,
so a sweep can be stopped (Ctrl-C) and continued at any time. At the end it
prints the ranked table and saves ``OUT/score-vs-compute.png``.

The parts live in :mod:`sweeping`: the sweep file (``recipes``), the results folder
(``results``), one job (``scoring``) and the ranked table and plot (``ranking``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# OpenMP threads that spin while they wait burn CPU time whenever other jobs share the cores,
# which inflates CPU-clock budgets and slows everyone; passive waiting keeps CPU time per step
# what a quiet machine measures. It must be set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli.errors import UserError  # noqa: E402
from astrojepa_cli.train import budget  # noqa: E402
from sweeping.ranking import plot_score_vs_compute, print_table, summary  # noqa: E402
from sweeping.recipes import Sweep, job_key, jobs, read_sweep  # noqa: E402
from sweeping.results import Results  # noqa: E402
from sweeping.scoring import same_pretraining, score_baselines, score_recipe  # noqa: E402
PLOT_FILE = "score-vs-compute.png"


def record_test_labels(sweep: Sweep, results: Results, root: Path | None) -> None:
    """Each dataset's test labels, in the order of the rows' test predictions (datasets not on this machine
    are left as they are)."""
    from astrojepa_cli import paths
    from astrojepa_cli.data import store
    from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT

    for dataset in sweep.datasets:
        try:
            meta = store.load(paths.existing_store(dataset, root), with_images=False)
        except UserError:
            continue
        results.record_test_labels(dataset, meta.labels[(meta.split == TEST_SPLIT) & (meta.labels >= 0)].tolist())


def run_sweep(sweep: Sweep, out: Path, root: Path | None) -> list[dict]:
    results = Results(out)
    record_test_labels(sweep, results, root)
    os.environ[budget.CLOCK_VARIABLE] = sweep.clock
    for name, options, dataset, seed in jobs(sweep):
        key = job_key(name, dataset, seed)
        row = results.find(key)
        if row is None:
            shared = same_pretraining(results, options, dataset, seed, root)
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
        if args.table:
            record_test_labels(sweep, Results(args.out), args.root)
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
