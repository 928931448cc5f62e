"""Images/s delivered by the training read path, against a naive per-item h5py Dataset, in the same run.

Ours: ``astrojepa_cli.data.loader.DeviceImages``: the store's uint8 pixels on the
device, a batch is one ``index_select`` plus normalisation; and the same class
forced onto its chunked path (a memory budget smaller than the store, batches in
its window-keeping order).

Naive: a ``torch.utils.data.Dataset`` whose ``__getitem__`` reads one image from
the HDF5 store with h5py and normalises it, batched by a shuffling
``DataLoader`` (with 0 and with 2 worker processes).

Every reader delivers the same thing: normalised float32 (B, C, H, W) batches
on ``--device``. Usage::

    python benchmarks/loader_throughput.py
    python benchmarks/loader_throughput.py --images 20000 --size 96 --device cuda

Prints a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from astrojepa_cli.data.loader import DeviceImages
from astrojepa_cli.data.store import load
from astrojepa_cli.data.store_writer import StoreWriter


def write_store(path: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    with StoreWriter(path, name="bench", image_shape=(size, size, 3), dtype=np.uint8, class_names=["a", "b"],
                     provenance={"source": "benchmark"}) as writer:
        for start in range(0, n, 1024):
            count = min(1024, n - start)
            writer.append(rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), np.arange(count) % 2,
                          [f"{start + i}" for i in range(count)])
        writer.finish()


class NaiveH5Dataset(Dataset):
    """One image per ``__getitem__``, read with h5py (file opened lazily in each worker)."""

    def __init__(self, path: Path) -> None:
        arrays = load(path, with_images=False)
        self.path, self.n = path, len(arrays.labels)
        self.mean = torch.as_tensor(arrays.channel_mean / 255, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(arrays.channel_std / 255, dtype=torch.float32).view(-1, 1, 1)
        self.images = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.images is None:
            self.images = h5py.File(self.path, "r")["images"]
        pixels = torch.from_numpy(self.images[index]).permute(2, 0, 1).float() / 255
        return (pixels - self.mean) / self.std


def rate(make_batches, device: torch.device, images: int, repeats: int) -> float:
    """Median over ``repeats`` of the images/s to pull ``images`` images from ``make_batches()`` onto ``device``."""
    return float(np.median([_rate_once(make_batches(), device, images) for _ in range(repeats)]))


def _rate_once(batches, device: torch.device, images: int) -> float:
    seen = 0
    start = time.perf_counter()
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        seen += batch.shape[0]
        if seen >= images:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192, help="images in the store")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--measure", type=int, default=8192, help="images pulled per reader and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    workdir = Path(tempfile.mkdtemp(prefix="astrojepa-loader-"))
    try:
        path = workdir / "bench.h5"
        write_store(path, args.images, args.size)
        generator = torch.Generator().manual_seed(0)
        image_bytes = args.size * args.size * 3

        results = []
        resident = DeviceImages(path, device)

        def resident_batches():
            order = torch.randperm(len(resident), generator=generator).to(device)
            return (resident.batch(rows) for rows in order.split(args.batch_size))

        results.append((f"DeviceImages ({resident.placement})", rate(resident_batches, device, args.measure, args.repeats)))
        chunked = DeviceImages(path, device, memory_budget_bytes=args.images * image_bytes // 4)

        def chunked_batches():
            return (chunked.batch(rows) for rows in chunked.shuffled_order(generator).split(args.batch_size))

        results.append((f"DeviceImages ({chunked.placement}, budget = store/4)",
                        rate(chunked_batches, device, args.measure, args.repeats)))
        dataset = NaiveH5Dataset(path)
        for workers in (0, 2):
            def naive_batches(workers=workers):
                return iter(DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=device.type == "cuda"))

            results.append((f"naive h5py Dataset + DataLoader, {workers} workers",
                            rate(naive_batches, device, args.measure, args.repeats)))
    finally:
        shutil.rmtree(workdir)

    baseline = results[2][1]
    print(f"Loader throughput: {args.images} images {args.size}x{args.size}x3 uint8, batch {args.batch_size}, "
          f"median of {args.repeats} passes of {args.measure} images per reader, device {device}, "
          f"torch threads {torch.get_num_threads()}.\n")
    print("| reader | images/s | vs naive (0 workers) |")
    print("|---|---:|---:|")
    for name, value in results:
        print(f"| {name} | {value:,.0f} | {value / baseline:.1f}x |")


if __name__ == "__main__":
    main()
