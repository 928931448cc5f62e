"""Does an anomaly ranking rank objects or positions? Corner flux of the top anomalies against the whole store.

A positionally degenerate encoder (one whose embedding depends on a corner of the image) ranks as
"most unusual" the images with a source where it happens to look. This counts, for each of the
four corners (squares of a quarter of the image side), how many of the top ``--top`` anomalies
have more than ``--share`` of their flux there, beside the fraction of all images that do. The
flux of an image is its pixels above the per-image median (the sky), summed over channels.

Usage (after the README's quickstart, in the same ``ASTROJEPA_HOME``)::

    ASTROJEPA_BUDGET_CLOCK=cpu python benchmarks/first_run.py --home /tmp/qs --json benchmarks/results/first-run.json
    python benchmarks/anomaly_corners.py --root /tmp/qs --json benchmarks/results/anomaly-corners.json

The target: at most 5 of the top 25 have a source in any one corner.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from astrojepa_cli import paths
from astrojepa_cli.data import store

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def corner_flux_shares(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) images -> (N, 4) share of each image's above-sky flux in each quarter-side corner square."""
    flux = images.astype(np.float64).sum(axis=-1)
    flux = np.clip(flux - np.median(flux.reshape(len(flux), -1), axis=1)[:, None, None], 0.0, None)
    side_h, side_w = flux.shape[1] // 4, flux.shape[2] // 4
    corners = [flux[:, :side_h, :side_w], flux[:, :side_h, -side_w:],
               flux[:, -side_h:, :side_w], flux[:, -side_h:, -side_w:]]
    total = flux.sum(axis=(1, 2)) + 1e-12
    return np.stack([corner.sum(axis=(1, 2)) / total for corner in corners], axis=1)


def top_anomaly_ids(run: str, data: str, top: int, root: Path) -> list[str]:
    """The ids of the run's ``top`` most unusual objects, by ``astrojepa anomalies`` as a user runs it."""
    command = [sys.executable, "-m", "astrojepa_cli", "anomalies", run, "--data", data, "--top", str(top),
               "--root", str(root), "--json"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [row["id"] for row in json.loads(output)["top"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the ASTROJEPA_HOME of the run")
    parser.add_argument("--run", default="latest")
    parser.add_argument("--data", default="first-radio")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--share", type=float, default=0.05, help="a corner 'has a source' above this flux share")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()

    arrays = store.load(paths.existing_store(args.data, args.root))
    has_source = corner_flux_shares(arrays.images) > args.share
    ids = top_anomaly_ids(args.run, args.data, args.top, args.root)
    row_of = {object_id: row for row, object_id in enumerate(arrays.ids)}
    top_rows = np.array([row_of[object_id] for object_id in ids])
    result = {
        "run": args.run, "data": args.data, "top": args.top, "share": args.share,
        "top_with_source_in_corner": dict(zip(CORNERS, map(int, has_source[top_rows].sum(axis=0)))),
        "all_images_with_source_in_corner": dict(zip(CORNERS, map(float, has_source.mean(axis=0).round(4)))),
        "n_images": int(len(arrays.ids)),
        "passes_at_most_5_in_any_corner": bool(has_source[top_rows].sum(axis=0).max() <= 5),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
