"""Which pixels of a 32 px cutout an untrained encoder's embedding depends on.

For each encoder (in eval mode, at initialisation, one channel), every one of the
H×W pixels of a random image is perturbed in turn by +1; a pixel counts when its
perturbation changes the embedding by more than ``--tolerance`` times the
embedding's largest magnitude. Both of the run embeddings the evaluating commands
offer are measured: ``mean`` (the encoder's pooled output) and ``last2`` (the means
of the last two stages, concatenated). ``top_left_share`` is the top-left quadrant's
share of the summed embedding change over all pixels (0.25 for an even spread).

timm's ResNets zero the last norm of every residual branch by default
(``zero_init_last``); each variant is measured with that default and with
``zero_init_last=False``, astrojepa's default. Machine-independent: the counts
are a property of the architectures.

Usage::

    python benchmarks/receptive_field.py --json benchmarks/results/receptive-field.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.encoders import Encoder  # noqa: E402

# label: (timm model, what it is)
VARIANTS = {
    "resnet18": ("resnet18", "timm ResNet-18: 7x7 stride-2 stem + max-pool"),
    "resnet18-w16": ("resnet18_small_w16", "3x3 stride-1 stem, no max-pool, widths 16-128"),
    "resnet18-w64": ("resnet18_small_w64", "3x3 stride-1 stem, no max-pool, widths 64-512 (CIFAR ResNet-18)"),
    "resnet18-s2": ("resnet18_small_s2", "3x3 stride-2 stem, no max-pool, widths 64-512"),
    "resnet15-gn": ("resnet15_gn", "ResNet-15, GroupNorm: 7x7 stride-2 stem + max-pool"),
}


def embeddings(encoder: Encoder, images: torch.Tensor, pool: str, batch: int) -> torch.Tensor:
    """(N, D) ``mean`` or ``last2`` embeddings of ``images``, in batches."""
    out = []
    with torch.no_grad():
        for chunk in images.split(batch):
            if pool == "mean":
                out.append(encoder(chunk))
            else:
                maps = encoder.backbone.forward_intermediates(chunk, indices=2, intermediates_only=True)
                out.append(torch.cat([m.mean(dim=(-2, -1)) for m in maps], dim=1))
    return torch.cat(out)


def dependence(encoder: Encoder, size: int, tolerance: float, batch: int, seed: int) -> dict:
    """Pixels whose +1 perturbation moves each pooled embedding, with their bounding box."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(1, 1, size, size, generator=generator)
    perturbed = base.repeat(size * size, 1, 1, 1)
    perturbed.view(size * size, -1)[torch.arange(size * size), torch.arange(size * size)] += 1.0
    result = {}
    for pool in ("mean", "last2"):
        reference = embeddings(encoder, base, pool, batch)
        moved = (embeddings(encoder, perturbed, pool, batch) - reference).abs().amax(dim=1)
        mask = (moved > tolerance * reference.abs().max()).view(size, size)
        rows, cols = torch.nonzero(mask, as_tuple=True)
        spread = moved.view(size, size)
        result[pool] = {"pixels": int(mask.sum()),
                        "top_left_share": round(float(spread[: size // 2, : size // 2].sum() / spread.sum()), 4),
                        "bounding_box": None if not len(rows) else
                        {"rows": [int(rows.min()), int(rows.max())], "cols": [int(cols.min()), int(cols.max())]}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rows = []
    for label, (timm_name, about) in VARIANTS.items():
        for zero_init_last in (True, False):
            encoder = Encoder(timm_name, in_chans=1, zero_init_last=zero_init_last).eval()
            last_stage = encoder.backbone.forward_intermediates(
                torch.zeros(1, 1, args.size, args.size), indices=1, intermediates_only=True)[0].shape[-1]
            counts = dependence(encoder, args.size, args.tolerance, args.batch, args.seed)
            rows.append({"encoder": label, "timm_model": timm_name, "architecture": about,
                         "zero_init_last": zero_init_last, "last_stage_side": last_stage, **counts})
            print(f"{label:13s} zero_init_last={str(zero_init_last):5s} last stage {last_stage}x{last_stage}: "
                  f"mean {counts['mean']['pixels']:4d}, last2 {counts['last2']['pixels']:4d} "
                  f"of {args.size * args.size} pixels; top-left quadrant's share "
                  f"{counts['mean']['top_left_share']:.2f} / {counts['last2']['top_left_share']:.2f}", flush=True)
    if args.json:
        payload = {"benchmark": "receptive_field", "image_size": args.size, "pixels": args.size ** 2,
                   "tolerance": args.tolerance, "seed": args.seed, "torch": torch.__version__,
                   "command": "python benchmarks/receptive_field.py --json " + str(args.json), "rows": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
