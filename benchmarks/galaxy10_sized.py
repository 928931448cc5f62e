"""Write an HDF5 file shaped like Galaxy10 DECals (17,736 RGB images of 256x256) from a small store.

For throughput and MFU on a machine that cannot download Galaxy10: the images are a
compact store's galaxies, upsampled to ``--size`` and repeated to ``--count``, so the
arithmetic, memory and data-on-device behaviour match Galaxy10's while the working
tree stays small. Import the file like any array file::

    python benchmarks/galaxy10_sized.py --data gz1-48 --out g10-sized.h5
    astrojepa fetch-data h5 g10-sized.h5 --name g10-sized --size 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from astrojepa_cli import paths
from astrojepa_cli.data import store

GALAXY10_DECALS = {"count": 17_736, "size": 256}
CHUNK = 256


def upsampled(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, size, size, C) uint8, bilinear."""
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_galaxy10_sized(source: np.ndarray, labels: np.ndarray, out: Path, count: int, size: int) -> None:
    """Repeat ``source`` (uint8 NHWC) cyclically to ``count`` images of ``size`` px in ``out``."""
    with h5py.File(out, "w") as handle:
        images = handle.create_dataset("images", (count, size, size, source.shape[-1]), dtype=np.uint8,
                                       chunks=(1, size, size, source.shape[-1]))
        handle.create_dataset("labels", data=labels[np.arange(count) % len(labels)].astype(np.int64))
        for start in range(0, count, CHUNK):
            rows = np.arange(start, min(start + CHUNK, count)) % len(source)
            images[start : start + len(rows)] = upsampled(source[rows], size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="Store whose images are repeated (uint8).")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=GALAXY10_DECALS["count"])
    parser.add_argument("--size", type=int, default=GALAXY10_DECALS["size"])
    args = parser.parse_args()
    arrays = store.load(paths.existing_store(args.data, args.root))
    if arrays.images.dtype != np.uint8:
        parser.error(f"store {args.data} holds {arrays.images.dtype} images; this needs uint8")
    write_galaxy10_sized(arrays.images, arrays.labels, args.out, args.count, args.size)
    print(f"wrote {args.count} images of {args.size}x{args.size}x{arrays.images.shape[-1]} to {args.out}")


if __name__ == "__main__":
    main()
