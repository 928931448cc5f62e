"""bf16 against fp32 as `--precision auto`'s budget calibration measured them in a study's runs.

Every pretraining a sweep runs with ``--budget`` and ``precision = "auto"`` times a few steps in
each precision, alternating, and records both medians in its row (``budget_plan``). This reads
them back from a committed ``rows.jsonl`` and prints, per recipe and store, the two step times,
their ratio (fp32 over bf16: above 1, bf16 is faster) and the precision the run trained in:

    python benchmarks/precision_in_studies.py benchmarks/results/morphology/rows.jsonl \
        --json benchmarks/results/precision/auto-in-morphology-study.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrojepa_cli.train.precision import choose_by_steps  # noqa: E402


def calibrations(rows_path: Path) -> list[dict]:
    """One entry per pretraining (rows that share a run are read once) that timed both precisions."""
    seen: set[str] = set()
    found = []
    for line in rows_path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        plan = row.get("budget_plan") or {}
        rates = plan.get("seconds_per_step_by_variant") or {}
        if row.get("kind") != "recipe" or row["run_id"] in seen or not {"fp32", "bf16"} <= rates.keys():
            continue
        seen.add(row["run_id"])
        found.append({"recipe": row["name"], "dataset": row["dataset"], "arch": row["config"]["arch"],
                      "loss": row["config"]["loss"], "clock": plan.get("clock"),
                      "threads": plan.get("machine", {}).get("torch_threads"),
                      "fp32_s": rates["fp32"], "bf16_s": rates["bf16"],
                      "bf16_speedup": round(rates["fp32"] / rates["bf16"], 3),
                      "chosen": choose_by_steps("auto", rates).used})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="a study's rows.jsonl")
    parser.add_argument("--json", type=Path, help="write the table here")
    args = parser.parse_args()
    found = calibrations(args.rows)
    print("| recipe | store | arch | loss | fp32 s/step | bf16 s/step | bf16 / fp32 speed | auto trained in |")
    print("|---|---|---|---|---:|---:|---:|---|")
    for c in found:
        print(f"| {c['recipe']} | {c['dataset']} | {c['arch']} | {c['loss']} | {c['fp32_s']:.3f} | {c['bf16_s']:.3f} "
              f"| {c['bf16_speedup']:.2f}× | {c['chosen']} |")
    by_arch: dict[str, list[float]] = {}
    for c in found:
        by_arch.setdefault(c["arch"], []).append(c["bf16_speedup"])
    summary = {arch: {"runs": len(v), "median": round(statistics.median(v), 2), "min": min(v), "max": max(v)}
               for arch, v in by_arch.items()}
    for arch, s in summary.items():
        print(f"{arch}: median {s['median']:.2f}× over {s['runs']} calibrations ({s['min']:.2f}–{s['max']:.2f}×)")
    if args.json:
        args.json.write_text(json.dumps({"source": str(args.rows), "calibrations": found, "by_arch": summary},
                                        indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
