"""Maskers: disjoint context and targets, block shapes in range, min_keep, and galaxy-aware context on real images."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import registry
from registry.maskers import RandomMasker, block_size, patch_grid

GRID = (14, 14)  # I-JEPA's 224 px / 16 px patches
PATCH = 4
DRAWS, BATCH = 250, 4  # 1,000 masks per masker


def _images(batch: int = BATCH, grid: tuple[int, int] = GRID) -> torch.Tensor:
    return torch.rand(batch, 1, grid[0] * PATCH, grid[1] * PATCH, generator=torch.Generator().manual_seed(5))


def _draws(masker, images: torch.Tensor):
    generator = torch.Generator().manual_seed(11)
    for _ in range(DRAWS):
        yield masker(images, PATCH, generator)


@pytest.mark.parametrize("name", ["multiblock", "brightness", "random"])
def test_context_and_targets_never_overlap(name):
    images = _images()
    patches = GRID[0] * GRID[1]
    for masks in _draws(registry.create("masker", name), images):
        assert masks.context.dtype == torch.int64 and masks.context.shape[0] == BATCH
        context = torch.zeros(BATCH, patches, dtype=torch.int64).scatter_add_(
            1, masks.context, torch.ones_like(masks.context))
        assert context.max() == 1, "a context patch is repeated"
        targets = torch.zeros(BATCH, patches, dtype=torch.bool).scatter_(1, masks.targets.flatten(1), True)
        assert not (context.bool() & targets).any()


@pytest.mark.parametrize("name", ["multiblock", "brightness"])
def test_min_keep_holds(name):
    for masks in _draws(registry.create("masker", name, min_keep=10), _images()):
        assert masks.context.shape[1] >= 10


def _within_rounding(height: int, width: int, scale, aspect, grid) -> bool:
    """Whether some real (h', w') within half a patch of (height, width) has the block's area and aspect ranges."""
    patches = grid[0] * grid[1]
    smallest, largest = int(patches * scale[0]), int(patches * scale[1])
    area_ok = (height - 0.5) * (width - 0.5) <= largest and (
        (height + 0.5) * (width + 0.5) >= smallest or height == grid[0] or width == grid[1])
    aspect_ok = (height - 0.5) / (width + 0.5) <= aspect[1] and (height + 0.5) / max(width - 0.5, 0.5) >= aspect[0]
    return area_ok and aspect_ok


@pytest.mark.parametrize("scale,aspect", [((0.15, 0.2), (0.75, 1.5)), ((0.85, 1.0), (1.0, 1.0))])
def test_block_shapes_cover_their_ranges(scale, aspect):
    generator = torch.Generator().manual_seed(3)
    shapes = [block_size(scale, aspect, GRID, generator) for _ in range(1000)]
    assert all(_within_rounding(h, w, scale, aspect, GRID) for h, w in shapes)
    if aspect[0] < aspect[1]:
        ratios = [h / w for h, w in shapes]
        assert min(ratios) < 1.0 < max(ratios)


def test_targets_are_whole_blocks_of_the_default_shape_ranges():
    masker = registry.create("masker", "multiblock")
    assert (masker.num_targets, masker.min_keep) == (4, 10)
    for masks in _draws(masker, _images()):
        rows, cols = masks.targets // GRID[1], masks.targets % GRID[1]
        height = rows.amax(-1) - rows.amin(-1) + 1
        width = cols.amax(-1) - cols.amin(-1) + 1
        assert masks.targets.shape[1] == 4
        assert torch.equal(height * width, torch.full_like(height, masks.targets.shape[-1])), "not a filled rectangle"
        assert _within_rounding(int(height[0, 0]), int(width[0, 0]), (0.15, 0.2), (0.75, 1.5), GRID)


def test_tiny_grid_still_gives_a_disjoint_context():
    images = _images(8, (4, 4))
    for name in ("multiblock", "brightness"):
        for masks in _draws(registry.create("masker", name), images):
            assert masks.context.shape[1] >= 1
            assert not np.intersect1d(masks.context[0].numpy(), masks.targets[0].flatten().numpy()).size


def _gz1_images(folder, count: int = 64, size: int = 64) -> torch.Tensor:
    """The first ``count`` catalogue images, centre half cropped (where the galaxy is) and resized."""
    with open(folder / "catalog.csv", newline="") as handle:
        files = [row["file"] for row, _ in zip(csv.DictReader(handle), range(count))]
    arrays = []
    for name in files:
        with Image.open(folder / name) as image:
            width, height = image.size
            box = (width // 4, height // 4, width - width // 4, height - height // 4)
            arrays.append(np.asarray(image.convert("RGB").crop(box).resize((size, size), Image.BILINEAR)))
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    return (pixels - pixels.mean((0, 2, 3), keepdim=True)) / pixels.std((0, 2, 3), keepdim=True)


def _bright_pixel_coverage(images: torch.Tensor, context: torch.Tensor, patch: int) -> torch.Tensor:
    """Per image: the fraction of its brightest 10 % of pixels that fall in context patches."""
    luminance = images.mean(1)
    bright = luminance >= luminance.flatten(1).quantile(0.9, dim=1).view(-1, 1, 1)
    rows, cols = patch_grid(images, patch)
    in_context = torch.zeros(images.shape[0], rows * cols).scatter_(1, context, 1.0).view(-1, 1, rows, cols)
    in_context = torch.nn.functional.interpolate(in_context, scale_factor=patch, mode="nearest")[:, 0].bool()
    return (bright & in_context).flatten(1).sum(1) / bright.flatten(1).sum(1)


@pytest.mark.slow
def test_brightness_context_covers_bright_galaxy_pixels_more_than_random(gz1_dir):
    images, patch = _gz1_images(gz1_dir), 8
    generator = torch.Generator().manual_seed(0)
    galaxy_aware = registry.create("masker", "brightness")(images, patch, generator)
    patches = patch_grid(images, patch)[0] * patch_grid(images, patch)[1]
    same_size = RandomMasker(target_ratio=1 - galaxy_aware.context.shape[1] / patches)(images, patch, generator)
    assert same_size.context.shape == galaxy_aware.context.shape
    aware = _bright_pixel_coverage(images, galaxy_aware.context, patch)
    chance = _bright_pixel_coverage(images, same_size.context, patch)
    assert aware.mean() > chance.mean() + 0.15
    assert (aware > chance).float().mean() > 0.8
