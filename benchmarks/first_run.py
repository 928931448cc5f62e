"""Wall time of the README's quickstart, run exactly as the README writes it, and the machine it ran on.

The quickstart is the README's first ``bash`` block that runs ``astrojepa pretrain``; its
install is the first ``bash`` block that runs ``pip install``. By default the install is
left out, since the target (at most 3 minutes on 2 cores) is for a machine where
astrojepa is installed; ``--with-install`` times the install too, in a temporary copy of
the repository, and then runs the quickstart in the virtual environment it made. Each
command runs, in order, in a child ``bash`` with a fresh ``ASTROJEPA_HOME`` (temporary,
or ``--home``), with this interpreter's ``bin`` folder first on ``PATH``, and stops at the
first that fails, as the README's commands would in a terminal.

On a machine shared with other jobs, set ``ASTROJEPA_BUDGET_CLOCK=cpu``: the commands
inherit it, so ``--budget`` counts pretraining's own CPU time and trains the steps it
would train alone. The wall time is then an upper bound, and each command's CPU time
(user + system, its processes together) is reported beside it.

Usage::

    python benchmarks/first_run.py
    python benchmarks/first_run.py --with-install
    ASTROJEPA_BUDGET_CLOCK=cpu python benchmarks/first_run.py --json benchmarks/results/first-run.json

Prints each command's wall and CPU time, the total and the machine (CPU model, cores,
AVX-512, load) on stdout, ending with a markdown table row for docs/benchmarks.md;
``--json`` also writes them to a file. Exits with the status of the first command that
failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astrojepa_cli.train.budget import CLOCK_VARIABLE, machine as budget_machine

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 180.0


def bash_blocks(readme: Path) -> list[list[str]]:
    """Every ``bash`` block of ``readme`` as its commands: comment lines dropped, ``\\`` continuations joined."""
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S):
        commands, pending = [], ""
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            pending += line.rstrip().rstrip("\\").strip() + " "
            if not line.rstrip().endswith("\\"):
                commands.append(pending.strip())
                pending = ""
        blocks.append(commands)
    return blocks


def _first_block_running(readme: Path, text: str) -> list[str]:
    for commands in bash_blocks(readme):
        if any(text in command for command in commands):
            return commands
    raise SystemExit(f"no bash block running '{text}' in {readme}")


def quickstart(readme: Path) -> list[str]:
    """The commands of the README's first ``bash`` block that runs ``astrojepa pretrain``."""
    return _first_block_running(readme, "astrojepa pretrain")


def install(readme: Path) -> list[str]:
    """The commands of the README's first ``bash`` block that runs ``pip install``."""
    return _first_block_running(readme, "pip install")


def machine() -> dict:
    """The machine as pretrain's budget records it (CPU model, cores, AVX-512), plus the cores this
    process may use and the 1-minute load average."""
    about = budget_machine()
    about["usable_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else about["cores"]
    about["load_1min"] = os.getloadavg()[0]
    return about


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: str, cwd: Path, env: dict) -> dict:
    """Run one command in ``bash``; its wall seconds, CPU seconds (all its processes) and exit status."""
    print(f"$ {command}", flush=True)
    cpu_before, start = _children_cpu_s(), time.perf_counter()
    status = subprocess.run(["bash", "-c", command], cwd=cwd, env=env).returncode
    return {"command": command, "wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(_children_cpu_s() - cpu_before, 1), "exit_status": status}


def run_all(commands: list[str], cwd: Path, env: dict) -> list[dict]:
    """Run ``commands`` in order, stopping after the first that fails."""
    timings = []
    for command in commands:
        timings.append(run(command, cwd, env))
        if timings[-1]["exit_status"] != 0:
            break
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with-install", action="store_true",
                        help="time the install too, in a temporary copy of the repository")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--home", type=Path, help="ASTROJEPA_HOME to use and keep (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args()
    commands = quickstart(args.readme)
    with tempfile.TemporaryDirectory(prefix="astrojepa-first-run-") as scratch:
        scratch = Path(scratch)
        home = args.home.resolve() if args.home else scratch / "home"
        env = {**os.environ, "ASTROJEPA_HOME": str(home),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        before, cwd, timings = machine(), REPO, []
        if args.with_install:
            cwd = scratch / "repo"
            shutil.copytree(REPO, cwd, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
            timings = run_all([" && ".join(install(args.readme))], cwd, env)
            env["PATH"] = f"{cwd / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        if all(timing["exit_status"] == 0 for timing in timings):
            timings += run_all(commands, cwd, env)
    about = machine()
    wall, cpu = sum(t["wall_s"] for t in timings), sum(t["cpu_s"] for t in timings)
    status = next((t["exit_status"] for t in timings if t["exit_status"] != 0), 0)
    clock = os.environ.get(CLOCK_VARIABLE, "wall")
    print("\n| command | wall time | CPU time | exit status |\n| --- | ---: | ---: | ---: |")
    for timing in timings:
        print(f"| `{timing['command']}` | {timing['wall_s']:.0f} s | {timing['cpu_s']:.0f} s | {timing['exit_status']} |")
    verdict = "within" if wall <= TARGET_S else "over"
    print(f"\nwall time {wall:.0f} s ({verdict} the {TARGET_S:.0f} s target), CPU time {cpu:.0f} s, "
          f"exit status {status}; budget clock: {clock}")
    print(f"machine: {about['cpu']}; {about['cores']} logical cores ({about['usable_cores']} usable); "
          f"AVX-512 {'yes' if about['avx512'] else 'no'}; "
          f"load average {before['load_1min']:.2f} before, {about['load_1min']:.2f} after")
    print("\n| command | wall time | CPU time | CPU | cores | AVX-512 | load before |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| `{' && '.join(t['command'] for t in timings)}` | {wall:.0f} s | {cpu:.0f} s | {about['cpu']} | "
          f"{about['usable_cores']} | {'yes' if about['avx512'] else 'no'} | {before['load_1min']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "commands": timings, "with_install": args.with_install, "exit_status": status, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "target_s": TARGET_S, "budget_clock": clock, "machine": about,
            "load_1min_before": before["load_1min"], "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
