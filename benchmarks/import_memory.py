"""Peak memory of importing a Galaxy10-DECaLS-sized file, against reading it whole, in the same run;
and the start-up time of the command line (``--help`` of every command).

A synthetic file in the Galaxy10 layout (``images`` N x 256 x 256 x 3 uint8,
``ans``; 17,736 images, 3.5 GB, by default) is written once, then imported by
the real CLI (``astrojepa fetch-data galaxy10-decals --file ...``) in a child
process at each requested ``--size``. The peak resident set size of each child
comes from ``os.wait4``. The baseline child does what a naive script does:
``np.asarray(h5py.File(...)["images"])``.

The help times are the wall time of ``astrojepa --help`` and of ``astrojepa CMD --help`` for every
command and subcommand, each in a fresh process (the best of ``--help-repeats``).

Usage::

    python benchmarks/import_memory.py                       # full size, --size 64 and 256
    python benchmarks/import_memory.py --images 2000 --sizes 64
    python benchmarks/import_memory.py --help-times-only

Prints markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

NAIVE = "import h5py, numpy as np, sys; images = np.asarray(h5py.File(sys.argv[1], 'r')['images']); print(images.shape)"


def write_synthetic(path: Path, n: int, side: int, chunk: int = 256) -> None:
    """Galaxy10 layout, noise pixels, written chunk by chunk so this process stays small too."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        images = handle.create_dataset("images", shape=(n, side, side, 3), dtype=np.uint8)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            images[start:stop] = rng.integers(0, 256, (stop - start, side, side, 3), dtype=np.uint8)
        handle["ans"] = (np.arange(n) % 10).astype(np.uint8)
        handle["redshift"] = rng.uniform(0, 0.3, n).astype(np.float32)


def run_child(command: list[str], env: dict) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, last line of stderr) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    tail = child.stderr.read().strip().splitlines()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {tail[-1] if tail else ''}")
    return usage.ru_maxrss / 1024, seconds, tail[-1] if tail else ""


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand of the app, the app itself first."""
    import typer

    from astrojepa_cli.app import app

    def walk(command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        return [path] + [p for name, sub in getattr(command, "commands", {}).items() for p in walk(sub, (*path, name))]

    return walk(typer.main.get_command(app), ())


def help_times(env: dict, repeats: int) -> list[tuple[str, float]]:
    """(command line, best wall seconds of ``--help`` in a fresh process) for every command."""
    rows = []
    for path in command_paths():
        command = [sys.executable, "-m", "astrojepa_cli", *path, "--help"]
        rows.append((" ".join(("astrojepa", *path, "--help")), min(run_child(command, env)[1] for _ in range(repeats))))
    return rows


def print_help_times(env: dict, repeats: int) -> None:
    rows = help_times(env, repeats)
    print(f"Wall time of --help in a fresh process (best of {repeats}); `python benchmarks/import_memory.py "
          f"--help-times-only --help-repeats {repeats}`.\n")
    print("| command | wall (s) |")
    print("|---|---:|")
    for line, seconds in rows:
        print(f"| `{line}` | {seconds:.2f} |")
    print(f"\nslowest: {max(seconds for _, seconds in rows):.2f} s\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=17736)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--sizes", default="64,256", help="stored sizes (--size) to import at")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "astrojepa-import-memory")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic file and stores")
    parser.add_argument("--help-times-only", action="store_true", help="measure only the --help start-up times")
    parser.add_argument("--help-repeats", type=int, default=3, help="fresh processes per --help (the best counts)")
    args = parser.parse_args()

    env = {**os.environ, "ASTROJEPA_HOME": str(args.workdir / "home"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    print_help_times(env, args.help_repeats)
    if args.help_times_only:
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / f"galaxy10_synthetic_{args.images}x{args.side}.h5"
    if not source.exists():
        write_synthetic(source, args.images, args.side)
    source_gib = source.stat().st_size / 2**30

    rows = []
    rss, seconds, _ = run_child([sys.executable, "-m", "astrojepa_cli", "fetch-data", "list"], env)
    rows.append(("astrojepa fetch-data list (start-up floor, no data)", "-", rss, seconds, "-"))
    rss, seconds, _ = run_child([sys.executable, "-c", NAIVE, str(source)], env)
    rows.append(("naive: np.asarray(h5py images) (no torch)", "-", rss, seconds, "-"))
    for size in [int(s) for s in args.sizes.split(",")]:
        command = [sys.executable, "-m", "astrojepa_cli", "fetch-data", "galaxy10-decals", "--file", str(source),
                   "--size", str(size), "--name", f"bench{size}"]
        rss, seconds, _ = run_child(command, env)
        stored = (args.workdir / "home" / "data" / f"bench{size}.h5").stat().st_size / 2**30
        rows.append((f"astrojepa fetch-data --size {size}", f"{stored:.2f} GiB", rss, seconds,
                     f"{args.images / seconds:.0f}"))

    print(f"Import of a synthetic Galaxy10-DECaLS-layout file: {args.images} x {args.side}x{args.side}x3 uint8, "
          f"{source_gib:.2f} GiB on disk (peak RSS of the child process, from os.wait4).\n")
    print("| reader | store | peak RSS (MiB) | wall (s) | images/s |")
    print("|---|---|---:|---:|---:|")
    for name, stored, rss, seconds, rate in rows:
        print(f"| {name} | {stored} | {rss:.0f} | {seconds:.1f} | {rate} |")
    if not args.keep:
        shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
