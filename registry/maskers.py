"""Built-in patch maskers (kind ``masker``) for JEPA-style objectives.

A masker splits each image's patch grid into a *context* (what the encoder
sees) and one or more *targets* (what the predictor must reconstruct). It is
called as ``masker(images, patch_size, generator, shard)`` on the training
device and returns :class:`Masks`: batched patch indices, never per-sample
Python lists.

Indices are row-major positions in the (H/p)×(W/p) patch grid. Every image of a
batch keeps the same number of context patches ("consistent truncation"), so
the context is one dense (N, K) tensor; surplus patches are dropped at random
(dimmest first by the brightness masker).
Context and target never share a patch.

Under DDP (``shard = (rank, world_size)``) every per-image draw is made for the
whole global batch and each rank keeps its own rows, and mask sizes are agreed
across ranks, so W processes draw exactly the masks one process would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from registry import PluginError, register
from registry.collectives import local_rows, world_min

Shard = tuple[int, int]
LOCAL: Shard = (0, 1)


@dataclass(frozen=True)
class Masks:
    """``context`` (N, K_c) and ``targets`` (N, T, K_t) sorted patch indices (int64)."""

    context: torch.Tensor
    targets: torch.Tensor


def patch_grid(images: torch.Tensor, patch_size: int) -> tuple[int, int]:
    """(rows, cols) of the patch grid of (N, C, H, W) ``images``."""
    return images.shape[-2] // patch_size, images.shape[-1] // patch_size


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator, device=generator.device))


def block_size(
    scale: tuple[float, float], aspect_ratio: tuple[float, float], grid: tuple[int, int], generator: torch.Generator
) -> tuple[int, int]:
    r"""One block shape for the whole batch, as in I-JEPA's multi-block sampler (Assran et al. 2023, §3).

    With :math:`s \sim U(scale)` and :math:`r \sim U(aspect\_ratio)` (height / width),
    :math:`k = \lfloor s\,H W \rfloor` patches and

    .. math:: h = \mathrm{round}\sqrt{k r}, \qquad w = \mathrm{round}\sqrt{k / r},

    clipped to the grid and to at least one patch.
    """
    rows, cols = grid
    patches = int(rows * cols * _uniform(*scale, generator))
    ratio = _uniform(*aspect_ratio, generator)
    height = min(rows, max(1, round(math.sqrt(patches * ratio))))
    width = min(cols, max(1, round(math.sqrt(patches / ratio))))
    return height, width


def _draw(shape: tuple[int, ...], generator: torch.Generator, shard: Shard, high: int | None = None) -> torch.Tensor:
    """Per-image uniform floats (or integers below ``high``) of ``shape``, drawn for the global batch."""
    global_shape = (shape[0] * shard[1], *shape[1:])
    if high is None:
        values = torch.rand(global_shape, generator=generator, device=generator.device)
    else:
        values = torch.randint(0, high, global_shape, generator=generator, device=generator.device)
    return local_rows(values, shard)


def block_masks(
    grid: tuple[int, int], size: tuple[int, int], count: int, batch: int, generator: torch.Generator,
    shard: Shard = LOCAL,
) -> torch.Tensor:
    """(batch, count, rows·cols) boolean masks of ``count`` blocks of ``size`` per image at uniform positions."""
    rows, cols = grid
    height, width = size
    device = generator.device
    top = _draw((batch, count, 1, 1), generator, shard, high=rows - height + 1)
    left = _draw((batch, count, 1, 1), generator, shard, high=cols - width + 1)
    row = torch.arange(rows, device=device).view(rows, 1)
    col = torch.arange(cols, device=device).view(1, cols)
    inside = (row >= top) & (row < top + height) & (col >= left) & (col < left + width)
    return inside.flatten(-2)


def top_indices(priority: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted indices of the ``count`` highest-priority patches of each row of (N, L) ``priority``."""
    return priority.topk(count, dim=-1).indices.sort(dim=-1).values


def mask_indices(mask: torch.Tensor, generator: torch.Generator, shard: Shard = LOCAL) -> torch.Tensor:
    """(N, ..., L) boolean masks -> (N, ..., K) indices, K the smallest row count; surplus dropped at random."""
    count = world_min(int(mask.sum(-1).min()), mask.device)
    return top_indices(mask + _draw(tuple(mask.shape), generator, shard), count)


def _fit_targets(size: tuple[int, int], count: int, grid: tuple[int, int]) -> tuple[int, int]:
    """Shrink target blocks until ``count`` of them cannot cover the grid, so a context always exists."""
    height, width = size
    while count * height * width >= grid[0] * grid[1]:
        if height == width == 1:
            raise PluginError(f"a {grid[0]}x{grid[1]} patch grid is too small for {count} target blocks; "
                            "use a larger --img-size or a smaller --patch-size")
        if height >= width:
            height -= 1
        else:
            width -= 1
    return height, width


class MultiBlockMasker:
    """I-JEPA multi-block masking: ``num_targets`` target blocks and one context block without them."""

    def __init__(
        self,
        num_targets: int = 4,
        target_scale: tuple[float, float] = (0.15, 0.2),
        target_aspect: tuple[float, float] = (0.75, 1.5),
        context_scale: tuple[float, float] = (0.85, 1.0),
        context_aspect: tuple[float, float] = (1.0, 1.0),
        min_keep: int = 10,
        context_tries: int = 20,
    ) -> None:
        if num_targets < 1 or min_keep < 1 or context_tries < 1:
            raise PluginError("num_targets, min_keep and context_tries must be positive")
        self.num_targets = num_targets
        self.target_scale, self.target_aspect = tuple(target_scale), tuple(target_aspect)
        self.context_scale, self.context_aspect = tuple(context_scale), tuple(context_aspect)
        self.min_keep = min_keep
        self.context_tries = context_tries

    def target_blocks(self, images: torch.Tensor, patch_size: int, generator: torch.Generator,
                      shard: Shard = LOCAL) -> torch.Tensor:
        """(N, num_targets, L) boolean target masks: blocks of one shared shape at independent positions."""
        grid = patch_grid(images, patch_size)
        size = _fit_targets(block_size(self.target_scale, self.target_aspect, grid, generator), self.num_targets, grid)
        return block_masks(grid, size, self.num_targets, images.shape[0], generator, shard)

    def __call__(self, images: torch.Tensor, patch_size: int, generator: torch.Generator,
                 shard: Shard = LOCAL) -> Masks:
        grid = patch_grid(images, patch_size)
        targets = self.target_blocks(images, patch_size, generator, shard)
        free = ~targets.any(1)
        # Of several candidate context blocks, take the first that keeps min_keep patches once the
        # targets are cut out (the official sampler retries one at a time); if none does, the context
        # is every non-target patch, which the target fitting guarantees is not empty.
        size = block_size(self.context_scale, self.context_aspect, grid, generator)
        candidates = block_masks(grid, size, self.context_tries, images.shape[0], generator, shard) & free.unsqueeze(1)
        needed = free.sum(-1).clamp(max=self.min_keep).unsqueeze(1)
        good = candidates.sum(-1) >= needed
        chosen = candidates[torch.arange(images.shape[0], device=free.device), good.int().argmax(1)]
        context = torch.where(good.any(1, keepdim=True), chosen, free)
        return Masks(mask_indices(context, generator, shard), mask_indices(targets, generator, shard))


def _target_count(ratio: float, grid: tuple[int, int]) -> int:
    patches = grid[0] * grid[1]
    if patches < 2:
        raise PluginError(f"masking needs at least 2 patches, the grid is {grid[0]}x{grid[1]}")
    return min(patches - 1, max(1, round(ratio * patches)))


def random_split(
    batch: int, patches: int, count: int, generator: torch.Generator, shard: Shard = LOCAL
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly random ``count`` of each image's patches, and the rest: (N, count) and (N, L - count) indices."""
    order = _draw((batch, patches), generator, shard).argsort(-1)
    return order[:, :count].sort(-1).values, order[:, count:].sort(-1).values


class BrightnessMasker:
    """Galaxy-aware masking: context sampled from the brightest patches, targets from anywhere.

    Targets are random patches rather than blocks: uniformly placed blocks cover
    the centre of the grid far more often than its edges, which is exactly
    where a survey cutout puts its galaxy, so block targets would strip the
    galaxy out of the context.
    """

    def __init__(
        self, signal_fraction: float = 0.5, context_fraction: float = 0.85, target_ratio: float = 0.25,
        min_keep: int = 10,
    ) -> None:
        if not (0 < signal_fraction <= 1 and 0 < context_fraction <= 1 and 0 < target_ratio < 1):
            raise PluginError("signal_fraction and context_fraction must lie in (0, 1], target_ratio in (0, 1)")
        self.signal_fraction = signal_fraction
        self.context_fraction = context_fraction
        self.target_ratio = target_ratio
        self.min_keep = min_keep

    def __call__(self, images: torch.Tensor, patch_size: int, generator: torch.Generator,
                 shard: Shard = LOCAL) -> Masks:
        n = images.shape[0]
        grid = patch_grid(images, patch_size)
        patches = grid[0] * grid[1]
        # 1. mean brightness of each patch (over channels and pixels), ranked within its image
        brightness = F.avg_pool2d(images.float().mean(1, keepdim=True), patch_size).flatten(1)
        order = brightness.argsort(-1).argsort(-1)
        # 2. the signal patches: the brightest signal_fraction of each image
        signal_count = max(1, round(self.signal_fraction * patches))
        signal = order >= patches - signal_count
        # 3. the context: a random context_fraction of the signal patches
        context_count = max(1, round(self.context_fraction * signal_count))
        jitter = _draw((n, patches), generator, shard)
        context = torch.zeros_like(signal).scatter(1, top_indices(signal + jitter, context_count), True)
        # 4. the targets: a random target_ratio of all patches, whatever their brightness
        targets, _ = random_split(n, patches, _target_count(self.target_ratio, grid), generator, shard)
        # 5. no context patch is a target
        free = torch.ones_like(signal).scatter(1, targets, False)
        context &= free
        # Keep the same count in every image: at least the smallest context, topped up to min_keep (when
        # the free area allows) with the brightest free patches; surplus context patches go dimmest first.
        smallest_context = world_min(int(context.sum(-1).min()), images.device)
        keep = max(smallest_context, min(self.min_keep, patches - targets.shape[1]))
        priority = 4.0 * context + 2.0 * free + order / patches
        return Masks(top_indices(priority, keep), targets.unsqueeze(1))


class RandomMasker:
    """Random patch masking: a random ``target_ratio`` of the patches is the target, the rest the context."""

    def __init__(self, target_ratio: float = 0.5) -> None:
        if not 0 < target_ratio < 1:
            raise PluginError(f"target_ratio must lie in (0, 1), got {target_ratio}")
        self.target_ratio = target_ratio

    def __call__(self, images: torch.Tensor, patch_size: int, generator: torch.Generator,
                 shard: Shard = LOCAL) -> Masks:
        grid = patch_grid(images, patch_size)
        count = _target_count(self.target_ratio, grid)
        targets, context = random_split(images.shape[0], grid[0] * grid[1], count, generator, shard)
        return Masks(context, targets.unsqueeze(1))


# The masker classes are their own factories: their constructor defaults are the plugin defaults.
register("masker", "multiblock", "I-JEPA multi-block: 4 target blocks (scale 0.15-0.2, aspect 0.75-1.5), "
         "context block 0.85-1.0 minus targets.")(MultiBlockMasker)
register("masker", "brightness", "Galaxy-aware: context sampled from the brightest patches, random target "
         "patches anywhere, overlap removed.")(BrightnessMasker)
register("masker", "random", "Random patches: target_ratio of the patches are targets, the rest the context.")(
    RandomMasker)
