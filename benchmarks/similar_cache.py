"""Wall and CPU time of ``astrojepa similar``: the first query (which embeds the store and fills the
run's embedding cache) against the queries after it (which read the cache), in fresh processes.

The run's cache is cleared first. Each query runs ``astrojepa similar RUN --id ID --k 10 --json`` as
a user types it; the neighbours of every query must equal the first's. Then, in this process, the CPU
time of reading the cached embeddings back; whether a cached query imports torch (it should not);
and, as a floor, fresh processes that import what a cached query needs (numpy, h5py, matplotlib)
and nothing else.

Usage::

    python benchmarks/similar_cache.py RUN --id OBJECT_ID --root HOME --json benchmarks/results/similar-cache.json

Prints one line per query and the machine (CPU model, cores, load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from astrojepa_cli.train.budget import machine

IMPORTS = "import numpy, h5py, matplotlib.pyplot"
# One cached query run in-process, then whether it imported torch.
TORCH_CHECK = ("import sys; from astrojepa_cli.launcher import main; sys.argv = ['astrojepa', 'similar', *sys.argv[1:]]\n"
               "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the child) and stdout of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), completed.stdout


def cache_read_cpu_s(run_ref: str, root: Path) -> float:
    """CPU seconds of what a cached query does for its embeddings: hash lookup, read, sha256 check."""
    from astrojepa_cli import paths, runs
    from astrojepa_cli.evaluate.features import cached_features
    from astrojepa_cli.runs.embedding_cache import EmbeddingCache

    run = runs.open_run(run_ref, root)
    store_path = paths.existing_store(run.manifest["dataset"]["name"], root)
    start = time.process_time()
    features = cached_features(store_path, EmbeddingCache.of_run(run), runs.run_pool(run.manifest),
                               runs.run_stretch(run.manifest))
    elapsed = time.process_time() - start
    if features is None:
        raise SystemExit("the run's cache holds no embeddings of its store after the queries")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--id", required=True, help="id of the query object")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=3, help="queries in all, the first included")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "astrojepa_cli"]
    load_before = os.getloadavg()[0]
    subprocess.run([*cli, "runs", "cache", args.run, "--clear", "--root", str(args.root)], check=True,
                   capture_output=True)
    queries, first = [], None
    for index in range(args.queries):
        wall, cpu, stdout = timed([*cli, "similar", args.run, "--id", args.id, "--k", "10", "--json",
                                   "--root", str(args.root)])
        neighbours = json.loads(stdout)["neighbours"]
        first = first or neighbours
        if neighbours != first:
            raise SystemExit(f"query {index + 1} found other neighbours than the first")
        queries.append({"query": index + 1, "cache": "filled" if index == 0 else "read", "wall_s": round(wall, 2),
                        "cpu_s": round(cpu, 2)})
        print(f"query {index + 1} ({queries[-1]['cache']} the cache): {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    check = subprocess.run([sys.executable, "-c", TORCH_CHECK, args.run, "--id", args.id, "--json", "--root",
                            str(args.root)], capture_output=True, text=True, check=True)
    torch_imported = check.stderr.strip().splitlines()[-1] == "True"
    print(f"a cached query imports torch: {torch_imported}")
    read_s = cache_read_cpu_s(args.run, args.root)
    print(f"reading the cached embeddings in-process: {read_s:.3f} s CPU")
    floors = [timed([sys.executable, "-c", IMPORTS])[:2] for _ in range(args.queries - 1)]
    floor = {"wall_s": round(min(w for w, _ in floors), 2), "cpu_s": round(min(c for _, c in floors), 2)}
    print(f"importing numpy, h5py and matplotlib alone: {floor['wall_s']:.2f} s wall, "
          f"{floor['cpu_s']:.2f} s CPU (best of {len(floors)})")
    result = {"run": args.run, "query_id": args.id, "queries": queries, "imports_only": floor,
              "torch_imported_by_cached_query": torch_imported,
              "cache_read_cpu_s": round(read_s, 3),
              "machine": {**machine(), "load_average_before": round(load_before, 2),
                          "load_average_after": round(os.getloadavg()[0], 2)},
              "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(result["machine"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
