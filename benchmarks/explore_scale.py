"""How ``astrojepa explore`` scales: page build time, page size and load time in headless Chromium.

Two synthetic stores of Gaussian blobs (round, elongated, double; noise; an RA/Dec catalogue) are
written, a tiny encoder is pretrained for two steps on the smaller one, and then:

- ``--inline`` objects (default 10,000): the embedding is timed, then everything after it (anomaly
  scores, map, neighbours, inline thumbnails, the page), then the page is written and opened from
  disk in headless Chromium, timed from navigation to the Bokeh document being drawn and idle;
  targets: build < 60 s, file <= 20 MB, drawn within 3 s. The baseline, opened in the same run the
  same way, is a bare Bokeh WebGL scatter of as many points, without thumbnails, neighbours or widgets.
- ``--served`` objects (default 100,000): ``astrojepa explore --serve`` runs in a child process;
  the time until it serves is its whole build (embedding included), then the page is loaded from
  the server in Chromium the same way; target: loaded within 5 s.
- ``--real RUN:STORE`` (repeatable, with ``--root HOME``): the single-file page of a real store
  (gz1-sdss, first-radio) in the embedding of an existing run, built and opened as the synthetic one.

Usage::

    nice python benchmarks/explore_scale.py --json benchmarks/results/explore-scale.json
    python benchmarks/explore_scale.py --inline 2000 --served 20000      # a quick look
    python benchmarks/explore_scale.py --inline 0 --served 100000        # the served page alone
    python benchmarks/explore_scale.py --inline 0 --served 0 --root HOME --real RUN:gz1 --real RUN2:first-radio

Needs chromium, chromium-driver and selenium (see tests/browser.py). Prints the numbers and the
machine on stdout; ``--json`` also writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astrojepa_cli.data.store_writer import StoreWriter  # noqa: E402
from tests.browser import (  # noqa: E402
    HOVERED_THUMBNAIL, chromium, errors, isolated_point, pointer, wait_for, wait_for_bokeh,
)

TINY_RUN = ("--arch", "vit-t", "--img-size", "16", "--patch-size", "4", "--batch-size", "16", "--local-views", "2",
            "--max-steps", "2", "--quiet", "--json")
TARGETS = {"inline_build_s": 60.0, "inline_bytes": 20_000_000, "inline_draw_s": 3.0, "served_load_s": 5.0}


def write_blob_survey(path: Path, n: int, side: int = 48, chunk: int = 2000, seed: int = 0) -> None:
    """``n`` noisy Gaussian blobs of three shapes at random orientations, with ra/dec and a magnitude."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] - (side - 1) / 2
    with StoreWriter(path, name=path.stem, image_shape=(side, side, 1), dtype=np.uint8,
                     class_names=["round", "elongated", "double"], provenance={"source": "synthetic"},
                     column_names=["ra", "dec", "mag"]) as writer:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            labels = rng.integers(0, 3, m)
            angle = rng.uniform(0, np.pi, (m, 1, 1))
            scale = rng.uniform(2.0, 5.0, (m, 1, 1))
            stretch = np.where(labels == 1, 2.5, 1.0)[:, None, None]
            u = x * np.cos(angle) + y * np.sin(angle)
            v = -x * np.sin(angle) + y * np.cos(angle)
            blob = np.exp(-((u / (scale * stretch)) ** 2 + (v / scale) ** 2) / 2)
            blob += (labels == 2)[:, None, None] * np.exp(-(((u - 2 * scale) ** 2 + v**2) / (scale**2)))
            pixels = np.clip(200 * blob + rng.normal(10, 4, blob.shape), 0, 255).astype(np.uint8)[..., None]
            columns = {"ra": rng.uniform(0, 360, m), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, m))),
                       "mag": rng.uniform(14, 22, m)}
            writer.append(pixels, labels, [f"g{start + i}" for i in range(m)], ["train"] * m, columns=columns)
        writer.finish()


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astrojepa_cli", *args], env=env, capture_output=True, text=True,
                          check=True)


def build_inline(run_id: str, data: str, out: Path, home: Path) -> dict:
    """The command's steps in this process, timed: the embedding, then the rest of the page."""
    os.environ["ASTROJEPA_HOME"] = str(home)
    from astrojepa_cli import runs
    from astrojepa_cli.commands.evaluated_run import frozen_features, open_with_data
    from astrojepa_cli.evaluate.explore.explorer_build import Embedding, ExplorerOptions, build_explorer
    from astrojepa_cli.evaluate.explore.recorded_scores import anomaly_scores

    run, data_name, store_path = open_with_data(run_id, data, None)
    pool = runs.run_pool(run.manifest)
    start = time.perf_counter()
    features, encoder = frozen_features(run, store_path, "cpu", "none", pool)
    embedded = time.perf_counter()
    scores, note = anomaly_scores({}, data_name, pool, "none", features.ids, features.embeddings, encoder.saved_step)
    options = ExplorerOptions("pca", "label", 25, 10, "https://www.legacysurvey.org/viewer?ra={ra}&dec={dec}", False)
    page, summary = build_explorer(features, store_path, scores, note, options, Embedding(run.id, data_name, pool, "none"))
    out.write_text(page, encoding="utf-8")
    built = time.perf_counter()
    return {"n": summary["n"], "embedding_s": round(embedded - start, 1), "build_after_embedding_s": round(built - embedded, 1),
            "bytes": out.stat().st_size, "thumbnail_px": summary["thumbnail_px"]}


def measure_real(run_id: str, data: str, root: Path, scratch: Path, downloads: Path) -> dict:
    """A real store's single-file page in an existing run's embedding: built, then opened twice (last kept)."""
    page = scratch / f"explore-{data}.html"
    measured = {"run": run_id, "data": data, **build_inline(run_id, data, page, root)}
    for _ in range(2):
        measured["draw_s"], measured["console_errors"], _ = load_time(page.as_uri(), downloads)
    print(f"real {measured}", flush=True)
    return measured


def write_baseline_page(n: int, path: Path) -> None:
    """The baseline: a bare Bokeh scatter of ``n`` points (WebGL, inline BokehJS), no thumbnails or widgets."""
    from bokeh.embed import file_html
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    xy = np.random.default_rng(0).normal(size=(2, n)).astype(np.float32)
    plot = figure(width=820, height=680, output_backend="webgl")
    plot.scatter(xy[0], xy[1], size=6)
    path.write_text(file_html(plot, resources=INLINE, title="baseline"), encoding="utf-8")


def load_time(url: str, downloads: Path, hover: bool = False) -> tuple[float, int, float | None]:
    """Seconds from navigation to the drawn, idle Bokeh document in a fresh headless Chromium; console errors;
    with ``hover``, the seconds from moving the mouse onto an isolated point to its thumbnail being loaded
    (checked to be that point's)."""
    driver = chromium(downloads)
    try:
        driver.get("about:blank")
        driver.get(url)
        seconds = wait_for_bokeh(driver, timeout=120)
        hover_s = None
        if hover:
            row, (x, y) = isolated_point(driver)
            start = time.perf_counter()
            pointer(driver, x, y)
            loaded = wait_for(driver, HOVERED_THUMBNAIL, timeout=60)
            hover_s = round(time.perf_counter() - start, 2)
            if not loaded.endswith(f"/thumb/{row}.png"):
                raise SystemExit(f"hovering row {row} showed {loaded}")
        return round(seconds, 2), len(errors(driver)), hover_s
    finally:
        driver.quit()


def serve_and_load(run_id: str, data: str, env: dict, downloads: Path) -> dict:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "astrojepa_cli", "explore", run_id, "--data", data, "--method", "pca",
                              "--serve", "--port", "0", "--json"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        served = json.loads(child.stdout.readline())
        build = time.perf_counter() - start
        page_bytes = len(urllib.request.urlopen(served["url"], timeout=60).read())
        seconds, console_errors, hover_s = load_time(served["url"], downloads, hover=True)
    finally:
        child.terminate()
        child.wait(timeout=60)
    return {"n": served["n"], "build_with_embedding_s": round(build, 1), "page_bytes": page_bytes, "load_s": seconds,
            "hover_thumbnail_s": hover_s, "console_errors": console_errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline", type=int, default=10_000, help="objects in the single-file page (0: skip)")
    parser.add_argument("--served", type=int, default=100_000, help="objects in the --serve page (0: skip)")
    parser.add_argument("--real", action="append", default=[], metavar="RUN:STORE",
                        help="also a real store's page in an existing run's embedding (repeatable; needs --root)")
    parser.add_argument("--root", type=Path, help="the astrojepa home that holds the --real runs and stores")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.real and args.root is None:
        parser.error("--real needs --root")
    if not args.inline and not args.served and not args.real:
        parser.error("nothing to measure: --inline and --served are both 0 and no --real is given")
    from astrojepa_cli.train.budget import machine

    with tempfile.TemporaryDirectory() as scratch:
        home, downloads = Path(scratch) / "home", Path(scratch) / "downloads"
        env = {**os.environ, "ASTROJEPA_HOME": str(home)}
        inline = served = None
        if args.inline:
            write_blob_survey(home / "data" / "survey-inline.h5", args.inline)
        if args.served:
            write_blob_survey(home / "data" / "survey-served.h5", args.served, seed=1)
        real = [measure_real(*pair.split(":", 1), args.root, Path(scratch), downloads) for pair in args.real]
        trained_on = "survey-inline" if args.inline else "survey-served"
        if args.inline or args.served:
            run_id = json.loads(_cli("pretrain", "--data", trained_on, *TINY_RUN, env=env).stdout)["run_id"]
        if args.inline:
            page = Path(scratch) / "explore.html"
            inline = build_inline(run_id, "survey-inline", page, home)
            baseline = Path(scratch) / "baseline.html"
            write_baseline_page(args.inline, baseline)
            for _ in range(2):  # alternate, so neither page always meets a cold browser cache
                inline["baseline_draw_s"], _, _ = load_time(baseline.as_uri(), downloads)
                inline["draw_s"], inline["console_errors"], _ = load_time(page.as_uri(), downloads)
            print(f"inline {inline}", flush=True)
        if args.served:
            served = serve_and_load(run_id, "survey-served", env, downloads)
            print(f"served {served}", flush=True)
    result = {"inline": inline, "served": served, "real": real, "targets": TARGETS, "machine": machine(),
              "load_1min": os.getloadavg()[0], "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
