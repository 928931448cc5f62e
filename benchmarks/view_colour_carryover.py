"""How much colour carries over between the two views of a pair: the shortcut a contrastive task can take.

With crops, flips and turns alone, the two views of a galaxy share its colour, so a network can
match pairs by colour without reading shape (Chen et al. 2020). For real gz1-sdss cutouts
(centre 212 px resized to 64 px, standardised per channel as the loader does) this draws two
views of each image under several view options and reports, across images, the correlation
between view 1 and view 2 of three per-image colours: the mean blue-minus-red level, the sky's
blue-minus-red level, and log(blue / red) of the flux above the sky. A correlation near 1 means
the colour alone identifies the pair.

Usage::

    python benchmarks/view_colour_carryover.py --json benchmarks/results/view-colour-carryover.json
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from registry.views import Augment, ViewSpec, random_views

GZ1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gz1-sdss"
OPTION_SETS = {
    "crop, flip, quarter turn (no colour change)": Augment(),
    "--reddening 0.3": Augment(reddening=0.3),
    "--band-gain 0.1": Augment(band_gain=0.1),
    "--band-gain 0.3": Augment(band_gain=0.3),
    "--drop-bands 0.5": Augment(drop_bands=0.5),
    "--reddening 0.3 --band-gain 0.1 --drop-bands 0.2": Augment(reddening=0.3, band_gain=0.1, drop_bands=0.2),
}


def load_cutouts(folder: Path, count: int, crop: int = 212, size: int = 64) -> torch.Tensor:
    """The first ``count`` catalog images, centre-cropped to ``crop`` px and resized, standardised per channel."""
    rows = list(csv.DictReader((folder / "catalog.csv").open()))[:count]
    pixels = []
    for row in rows:
        image = Image.open(folder / row["file"]).convert("RGB")
        left, top = (image.width - crop) // 2, (image.height - crop) // 2
        pixels.append(np.asarray(image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.BILINEAR)))
    images = torch.tensor(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    return (images - images.mean((0, 2, 3), keepdim=True)) / images.std((0, 2, 3), keepdim=True)


def view_colours(views: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-view colours: blue-minus-red mean, sky blue-minus-red (the median), log(B/R) of the flux above the sky."""
    sky = views.flatten(2).median(2).values
    excess = (views - sky[..., None, None]).clamp_min(0).mean((2, 3))
    return {"mean B-R": (views[:, 2] - views[:, 0]).mean((1, 2)), "sky B-R": sky[:, 2] - sky[:, 0],
            "source log(B/R) above sky": torch.log((excess[:, 2] + 1e-3) / (excess[:, 0] + 1e-3))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=GZ1, help="the gz1-sdss folder")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = load_cutouts(args.data, args.count)
    n = len(images)
    result = {"images": n, "view_scale": [0.3, 1.0], "crop_ratio": [1.0, 1.0], "correlation_between_views": {}}
    for name, augment in OPTION_SETS.items():
        views = random_views(images, ViewSpec(2, 64, (0.3, 1.0), (1.0, 1.0), augment), torch.Generator().manual_seed(0))
        result["correlation_between_views"][name] = {
            colour: round(float(np.corrcoef(values[:n], values[n:])[0, 1]), 3)
            for colour, values in view_colours(views).items()}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
