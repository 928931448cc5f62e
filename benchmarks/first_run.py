"""Wall time of the README's main job, run exactly as the README writes it, and the machine it ran on.

The main job is the first ``bash`` block of README.md that runs ``astrojepa pretrain``.
Where that line also installs the package (``python3 -m venv ...``, ``pip install ...``),
the segments up to the last ``pip install`` are the install: by default they are left
out and the rest of the line is timed as written, since the target (at most 3 minutes on
2 cores) is for a machine where astrojepa is installed; ``--with-install`` times the
whole line in a temporary copy of the repository instead. Either way the job runs in a
child ``bash`` with a fresh, temporary ``ASTROJEPA_HOME``, so no existing data or run is
touched, and with this interpreter's ``bin`` folder first on ``PATH``.

Usage::

    python benchmarks/first_run.py
    python benchmarks/first_run.py --with-install

Prints the command, the wall time and the machine (CPU model, cores, AVX-512, load) on
stdout, ending with a markdown table row for docs/benchmarks.md. Exits with the job's
exit status.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astrojepa_cli.train.budget import machine as budget_machine

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 180.0
INSTALL = re.compile(r"^\s*(python3? -m venv|\. \S*activate|source \S*activate|pip3? install)")


def main_job(readme: Path) -> str:
    """The README's first ``bash`` block that runs ``astrojepa pretrain``, comment lines dropped, as one line."""
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S):
        lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        command = " ".join(line.rstrip("\\").strip() for line in lines)
        if "astrojepa pretrain" in command:
            return command
    raise SystemExit(f"no bash block running 'astrojepa pretrain' in {readme}")


def without_install(command: str) -> str:
    """The ``&&`` segments after the last install step (all of them if there is none)."""
    segments = command.split("&&")
    installs = [number for number, segment in enumerate(segments) if INSTALL.match(segment)]
    return "&&".join(segments[installs[-1] + 1:] if installs else segments).strip()


def machine() -> dict:
    """The machine as pretrain's budget records it (CPU model, cores, AVX-512), plus the cores this
    process may use and the 1-minute load average."""
    about = budget_machine()
    about["usable_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else about["cores"]
    about["load_1min"] = os.getloadavg()[0]
    return about


def run(command: str, cwd: Path, home: Path) -> tuple[float, int]:
    env = {**os.environ, "ASTROJEPA_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    completed = subprocess.run(["bash", "-c", command], cwd=cwd, env=env)
    return time.perf_counter() - start, completed.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with-install", action="store_true",
                        help="time the install too, in a temporary copy of the repository")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args()
    written = main_job(args.readme)
    command = written if args.with_install else without_install(written)
    with tempfile.TemporaryDirectory(prefix="astrojepa-first-run-") as scratch:
        scratch = Path(scratch)
        cwd = REPO
        if args.with_install:
            cwd = scratch / "repo"
            shutil.copytree(REPO, cwd, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
        print(f"timing: {command}", flush=True)
        before = machine()
        seconds, status = run(command, cwd, scratch / "home")
    about = machine()
    verdict = "within" if seconds <= TARGET_S else "over"
    print(f"\nwall time {seconds:.0f} s ({verdict} the {TARGET_S:.0f} s target), exit status {status}")
    print(f"machine: {about['cpu']}; {about['cores']} logical cores ({about['usable_cores']} usable); "
          f"AVX-512 {'yes' if about['avx512'] else 'no'}; "
          f"load average {before['load_1min']:.2f} before, {about['load_1min']:.2f} after")
    print("\n| command | wall time | CPU | cores | AVX-512 | load before |\n| --- | --- | --- | --- | --- | --- |")
    print(f"| `{command}` | {seconds:.0f} s | {about['cpu']} | {about['usable_cores']} | "
          f"{'yes' if about['avx512'] else 'no'} | {before['load_1min']:.2f} |")
    return status


if __name__ == "__main__":
    sys.exit(main())
