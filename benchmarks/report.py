"""Regenerate docs/results.md from the committed result files, so every number there has a source.

Usage::

    python benchmarks/report.py            # rewrite docs/results.md
    python benchmarks/report.py --check    # exit 1 if docs/results.md differs from what the files give

It reads each study listed in :data:`STUDIES` (its TOML sweep file and the
``rows.jsonl`` that ``benchmarks/sweep.py`` wrote) and the diagnosis JSON files
under ``benchmarks/results/``, and writes the tables between the prose below.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from sweeping.baseline_keys import baselines_of  # noqa: E402
from sweeping.intervals import intervals_markdown  # noqa: E402
from sweeping.ranking import delta, summary  # noqa: E402
from sweeping.recipes import RANKABLE, job_key, jobs, read_sweep  # noqa: E402
from sweeping.report_text import BEFORE_THE_FIX, INTRO  # noqa: E402
from sweeping.results import Results  # noqa: E402
from sweeping.targets import targets_markdown  # noqa: E402

RESULTS_MD = ROOT / "docs" / "results.md"
# (title, sweep file, results folder, how its recipes were chosen), in the order they appear.
MORPHOLOGY = ("The morphology study", "benchmarks/studies/morphology.toml", "benchmarks/results/morphology",
              "one factor at a time from the fixed base, then the structural winners combined")
STUDIES = [("The CPU recipe study", "benchmarks/studies/cpu-recipes.toml", "benchmarks/results/cpu-recipes",
            "one factor at a time from the first, then the winners combined"),
           ("The confirmation at 30 minutes", "benchmarks/studies/cpu-confirm.toml", "benchmarks/results/cpu-confirm",
            "the study's best recipes at the targets' budget and seeds")]
PROBE_NAMES = {"linear": "linear", "knn-20": "kNN (k=20)", "10-shot": "10 labels per class"}
# Each CPU preset of astrojepa_cli/train/presets.py and the recipe it ships, by name in each study
# above (tests/test_sweep.py checks that the preset's options are the recipe's).
PRESET_RECIPES = {"small-cpu": ("probe-last2", "simclr-last2")}

def _cell(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if not std else f"{value:.3f} ± {std:.3f}"


def _changed(options: dict, base: dict) -> str:
    changed = {k: v for k, v in options.items() if base.get(k) != v}
    return ", ".join(f"`{k}={json.dumps(v)}`" for k, v in changed.items()) or "(the base)"


def _rows(results_dir: str) -> list[dict]:
    """The study's rows; none (and no folder made) where it has not run yet."""
    return Results(ROOT / results_dir).rows() if (ROOT / results_dir).is_dir() else []


def study_section(title: str, sweep_file: str, results_dir: str, chosen: str) -> str:
    sweep = read_sweep(ROOT / sweep_file)
    rows = _rows(results_dir)
    recipes = [r for r in rows if r["kind"] == "recipe"]
    baselines = {r["key"]: r for r in rows if r["kind"] == "baseline"}
    base = dict(sweep.recipes[0][1])
    length = ", ".join(f"{k} {v}" for k, v in sweep.length.items())
    lines = [f"## {title}", "",
             f"`{sweep_file}`: {len(sweep.recipes)} recipes, {chosen}; "
             f"{len({r['name'] for r in recipes})} of them scored so far, {len(recipes)} pretraining runs "
             f"(datasets: {', '.join(sweep.datasets)}; seeds {sweep.seeds}; {length} each, clock "
             f"{sweep.clock}).", "",
             "```bash", f"python benchmarks/sweep.py {sweep_file} --out {results_dir}", "```", ""]
    if not recipes:
        return "\n".join(lines + ["No run has finished yet.", ""])
    machines = sorted({json.dumps(r["machine"], sort_keys=True) for r in recipes})
    lines += ["Machines (the step count a budget buys depends on the machine; each run names its own): "
              + "; ".join(f"{_LETTERS[i]}: {_machine(json.loads(m))}" for i, m in enumerate(machines)) + ".", ""]
    if (ROOT / results_dir / "score-vs-compute.png").exists():
        lines += [f"![score against compute](../{results_dir}/score-vs-compute.png)", ""]
    ranked = summary(sweep, rows)
    lines += [f"### Ranking (balanced accuracy of the {PROBE_NAMES[sweep.rank_by]} probe, mean over datasets)", "",
              "| # | recipe | changes | score | " + " | ".join(
                  f"{d} linear (Δ random) | {d} 10-shot (Δ random, Δ scratch)" for d in sweep.datasets) + " |",
              "|---:|---|---|---:|" + "---:|---:|" * len(sweep.datasets)]
    options = dict(sweep.recipes)
    for rank, line in enumerate(ranked, 1):
        cells = []
        for dataset in sweep.datasets:
            c = line["datasets"].get(dataset)
            cells += ["–", "–"] if c is None else [
                f"{c['linear']:.3f} ({c['linear'] - c['linear_random']:+.3f})" if "linear_random" in c else
                f"{c['linear']:.3f}",
                f"{c['10-shot']:.3f} ({delta(c, '10-shot')}, {delta(c, '10-shot', 'scratch')})"]
        lines.append(f"| {rank} | {line['name']} | {_changed(options[line['name']], base)} | "
                     f"{_cell(line['score'])} | " + " | ".join(cells) + " |")
    lines.append("")
    for dataset in sweep.datasets:
        here = [r for r in recipes if r["dataset"] == dataset]
        if not here:
            continue
        lines += [f"### Every run on {dataset}", "",
                  "Each probe: balanced accuracy / accuracy / macro-F1; 10-shot: mean ± std of the balanced "
                  "accuracy over 5 draws. RankMe: effective rank of the embeddings at the last epoch end.", "",
                  "| recipe | seed | machine | steps | epochs | RankMe | linear | kNN | 10-shot |",
                  "|---|---:|---|---:|---:|---:|---|---|---|"]
        order = {name: i for i, (name, _) in enumerate(sweep.recipes)}
        for row in sorted(here, key=lambda r: (order.get(r["name"], 1e9), r["seed"])):
            lines.append(f"| {row['name']} | {row['seed']} | {_machine_letter(row['machine'], machines)} | "
                         f"{row['steps']} | {row['epochs']:.1f} | "
                         f"{_cell(row.get('effective_rank'))[:5]} | " + " | ".join(_probe(row["scores"], p)
                                                                                 for p in RANKABLE) + " |")
        used = sorted({k for r in here for k in baselines_of(r).values() if k in baselines})
        for key in used:
            lines.append(f"| baseline: {key} | | | | | | " + " | ".join(_probe(baselines[key]["scores"], p)
                                                                    for p in RANKABLE) + " |")
        lines.append("")
    return "\n".join(lines)


def targets_section(title: str, sweep_file: str, results_dir: str, chosen: str) -> str:
    """Where the study's best recipes stand against the targets (defined at 30 minutes and 3 seeds)."""
    sweep = read_sweep(ROOT / sweep_file)
    lines_so_far = summary(sweep, _rows(results_dir))
    ranked = [line for line in lines_so_far if line["score"] is not None]
    best = (ranked or [line for line in lines_so_far if line["datasets"]] or [None])[0]
    if best is None:
        return ""
    lejepa = next((line for line in ranked if dict(sweep.recipes)[line["name"]].get("loss") == "lejepa"), None)
    chosen = (f"The best recipe by the ranking above is `{best['name']}`." if ranked else
              f"No recipe is scored on every dataset yet; these are `{best['name']}`'s rows on "
              f"{', '.join(best['datasets'])}.")
    lines = [f"### {title}: the best recipe so far against the targets", "",
             f"{chosen} The targets are defined for a "
             f"30-minute budget and the mean of 3 seeds; these rows are the mean of {_seeds(best)} at "
             f"{_length(sweep)} of pretraining.", "",
             "| dataset | target | needed | measured | met |", "|---|---|---:|---:|---|"]
    checks = {
        "gz1-48": [("linear probe", "linear", None, 0.70), ("linear − random weights", "linear", "random", 0.08),
                   ("linear − pixels", "linear", "pixels", 0.10), ("10-shot − random weights", "10-shot", "random", 0.05),
                   ("10-shot − trained from scratch", "10-shot", "scratch", 0.10),
                   ("kNN − pixels", "knn-20", "pixels", 0.0)],
        "first-radio": [("linear − random weights", "linear", "random", 0.05)],
    }
    for dataset, rows in checks.items():
        cell = best["datasets"].get(dataset)
        for label, probe, against, needed in rows if cell else []:
            key = f"{probe}_{against}" if against else None
            if key and key not in cell:
                continue
            value = cell[probe] - (cell[key] if key else 0.0)
            lines.append(f"| {dataset} | {label} | {needed:+.2f} | {value:+.3f} | {'yes' if value >= needed else 'no'} |"
                         if against else f"| {dataset} | {label} | {needed:.2f} | {value:.3f} | "
                         f"{'yes' if value >= needed else 'no'} |")
    if lejepa:
        gap = best["score"] - lejepa["score"]
        lines.append(f"| both | best LeJEPA (`{lejepa['name']}`) within 0.03 of the best | 0.03 | {gap:.3f} | "
                     f"{'yes' if gap <= 0.03 else 'no'} |")
    return "\n".join(lines) + "\n"


def intervals_section(sweep_file: str, results_dir: str) -> str:
    """Every run of a study with paired-bootstrap 95 % intervals (from the rows' test predictions)."""
    results = Results(ROOT / results_dir) if (ROOT / results_dir).is_dir() else None
    return intervals_markdown(read_sweep(ROOT / sweep_file), results.rows(), results.test_labels()) if results else ""


def _seeds(line: dict) -> str:
    counts = sorted({cell["seeds"] for cell in line["datasets"].values()})
    return " or ".join(map(str, counts)) + (" seed" if counts == [1] else " seeds")


def _length(sweep) -> str:
    return ", ".join(f"{v} {k}" if k != "budget" else f"a {v} budget ({sweep.clock} clock)"
                     for k, v in sweep.length.items())


def _probe(scores: dict, probe: str) -> str:
    if probe not in scores:
        return "–"
    s = scores[probe]
    head = f"{s['balanced_accuracy']:.3f}"
    if probe == "10-shot":
        return f"{head} ± {s['balanced_accuracy_std']:.3f}"
    return f"{head} / {s['accuracy']:.3f} / {s['macro_f1']:.3f}"


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _machine_letter(machine: dict, machines: list[str]) -> str:
    return _LETTERS[machines.index(json.dumps(machine, sort_keys=True))]


def _machine(machine: dict) -> str:
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['torch_threads']} torch threads, "
            f"AVX-512 {'yes' if machine['avx512'] else 'no'}" + (f", GPU {machine['gpu']}" if machine.get("gpu") else ""))


def presets_section() -> str:
    """What each CPU preset scored: the linear probe of its recipe in every study, per dataset."""
    studies = [(title, read_sweep(ROOT / sweep_file), _rows(results_dir)) for title, sweep_file, results_dir, _ in STUDIES]
    header = ["preset", *(f"{title}: {dataset} linear" for title, sweep, _ in studies for dataset in sweep.datasets)]
    lines = ["## The presets", "",
             "`pretrain --preset small-cpu` (what `pretrain` uses on a machine without a GPU when no recipe option is "
             "given) and `--preset lejepa-cpu` are the recipes named here, with `--budget 30m`; the recipe's probe "
             "pooling is the preset's `--embedding-pool`, the run's embedding that `probe`, `embed`, `anomalies` and "
             "`similar` use. Linear balanced accuracy, mean ± std over the seeds scored (their number in brackets):",
             "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for preset, names in PRESET_RECIPES.items():
        cells = []
        for (_, sweep, rows), name in zip(studies, names):
            line = next((line for line in summary(sweep, rows) if line["name"] == name), {"datasets": {}})
            for dataset in sweep.datasets:
                cell = line["datasets"].get(dataset)
                cells.append(f"`{name}` {_cell(cell['linear'], cell['linear_std'])} ({cell['seeds']})" if cell
                             else f"`{name}` –")
        lines.append(f"| `{preset}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def diagnosis_section() -> str:
    files = sorted((ROOT / "benchmarks" / "results").glob("diagnosis-*.json"))
    if not files:
        return ""
    return ("## Diagnosis\n\nWhy learned features barely beat random weights: see [diagnosis.md](diagnosis.md), "
            f"from {', '.join(f'`{f.relative_to(ROOT)}`' for f in files)}.\n")


def morphology_targets_section(sweep_file: str, results_dir: str) -> str:
    """The morphology targets against the study's best recipe (:mod:`sweeping.targets`)."""
    results = Results(ROOT / results_dir) if (ROOT / results_dir).is_dir() else None
    sweep = read_sweep(ROOT / sweep_file)
    return targets_markdown(sweep, results.rows(), results.test_labels(), _length(sweep)) if results else ""


def render() -> str:
    parts = ([INTRO, study_section(*MORPHOLOGY), intervals_section(*MORPHOLOGY[1:3]),
              morphology_targets_section(*MORPHOLOGY[1:3]), BEFORE_THE_FIX]
             + [section for study in STUDIES for section in (study_section(*study), targets_section(*study))]
             + [presets_section(), diagnosis_section(), to_measure_section()])
    return "\n".join(part for part in parts if part).rstrip() + "\n"


def to_measure_section() -> str:
    """Each study's jobs (recipe, dataset, seed) that have no row yet, and the preset never measured."""
    lines = ["## What is still to be measured", ""]
    for title, sweep_file, results_dir, _ in (MORPHOLOGY, *STUDIES):
        sweep = read_sweep(ROOT / sweep_file)
        done = {r["key"] for r in _rows(results_dir) if r["kind"] == "recipe"}
        every_job = [(name, dataset, seed) for name, _, dataset, seed in jobs(sweep)]
        missing = [job for job in every_job if job_key(*job) not in done]
        if not missing:
            continue
        recipes = sorted({name for name, _, _ in missing}, key=[name for name, _ in sweep.recipes].index)
        lines.append(f"- {title} (`{sweep_file}`): {len(missing)} of its {len(every_job)} jobs (recipe × dataset × "
                     f"seed), of {len(recipes)} recipes: " + ", ".join(f"`{name}`" for name in recipes)
                     + ". The sweep resumes where it stopped and skips finished jobs.")
    lines.append("- The `gpu` preset: never run; `pretrain --preset gpu` says so.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if docs/results.md is not up to date.")
    args = parser.parse_args()
    text = render()
    if args.check:
        if RESULTS_MD.read_text() != text:
            print("docs/results.md is out of date; run python benchmarks/report.py", file=sys.stderr)
            return 1
        return 0
    RESULTS_MD.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
