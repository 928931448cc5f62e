"""Batched, on-device view generation with astronomy-safe augmentations.

A view is a random resized crop, a random flip and a random rotation (by a
multiple of 90°, or by any angle), optionally shifted by a small translation,
composed into one affine map per sample and applied with a single
``grid_sample`` call for the whole batch. Optional photometric steps follow, in
this order: a PSF-like Gaussian blur; one multiplication of each channel's flux
above the sky by a flux scale, a dust reddening and a per-band gain (all
:mod:`registry.photometry`); a single-band view; and Gaussian pixel noise. There
is no per-sample Python. Colour changes only in the ways a survey changes it
(foreground dust, calibration, the band observed), never by hue jitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from registry.photometry import band_gains, extinction_coefficients, extinction_factors, single_band

ROTATIONS = ("quarter", "continuous")


@dataclass(frozen=True)
class Augment:
    """The augmentations every view gets besides its crop and flip (all off but quarter turns by default).

    ``rotation``: ``quarter`` (multiples of 90°) or ``continuous`` (any angle);
    ``translate``: largest shift of the crop centre, as a fraction of the image side;
    ``blur_sigma``: largest std (pixels) of a Gaussian PSF-like blur, drawn uniformly from [0, it];
    ``flux_scale``: (low, high) range of a log-uniform factor on the flux above the sky;
    ``reddening``: largest colour excess E(B-V), drawn uniformly from [0, it], of a dust screen;
    ``extinction``: its per-channel coefficients R_c (None: SDSS gri for 3 channels, :mod:`registry.photometry`);
    ``band_gain``: std of the log of an independent gain on each channel's flux above the sky;
    ``drop_bands``: probability that a view keeps one random band, copied into every channel;
    ``noise_std``: std of added Gaussian noise, in normalised units.
    """

    rotation: str = "quarter"
    translate: float = 0.0
    blur_sigma: float = 0.0
    flux_scale: tuple[float, float] | None = None
    reddening: float = 0.0
    extinction: tuple[float, ...] | None = None
    band_gain: float = 0.0
    drop_bands: float = 0.0
    noise_std: float = 0.0


@dataclass(frozen=True)
class ViewSpec:
    """``count`` views of ``size``×``size`` pixels cropping ``scale`` of the image area."""

    count: int
    size: int
    scale: tuple[float, float]
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    augment: Augment = Augment()


def _uniform(low: float, high: float, n: int, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def shard_rows(count: int, n_local: int, shard: tuple[int, int], device) -> torch.Tensor:
    """Rows of a view-major global parameter table that belong to this rank's batch shard.

    The rank holds global batch items ``rank, rank + world, ...``; drawing the
    parameters for the whole global batch and keeping these rows makes a DDP run
    draw exactly the views a single process would for the same global batch.
    """
    rank, world = shard
    items = rank + world * torch.arange(n_local, device=device)
    return (torch.arange(count, device=device).unsqueeze(1) * n_local * world + items).reshape(-1)


def random_views(images: torch.Tensor, spec: ViewSpec, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """(N, C, H, W) float images -> (spec.count * N, C, size, size) augmented views.

    Views are ordered view-major: rows ``v*N : (v+1)*N`` are view ``v`` of every image.
    ``shard = (rank, world_size)`` selects this rank's part of the global batch's views.
    """
    n, device = images.shape[0], images.device
    total = spec.count * n * shard[1]
    area = _uniform(*spec.scale, total, generator, device)
    log_ratio = _uniform(math.log(spec.ratio[0]), math.log(spec.ratio[1]), total, generator, device)
    # Crop half-extents in normalised [-1, 1] coordinates, clipped to the image.
    half_w = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)
    half_h = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    centre_x = (2 * torch.rand(total, generator=generator, device=device) - 1) * (1 - half_w)
    centre_y = (2 * torch.rand(total, generator=generator, device=device) - 1) * (1 - half_h)
    flip = torch.where(torch.rand(total, generator=generator, device=device) < 0.5, -1.0, 1.0)
    if spec.augment.rotation == "continuous":
        angle = _uniform(0.0, 2 * math.pi, total, generator, device)
        cos, sin = torch.cos(angle), torch.sin(angle)
    else:
        quarter_turns = torch.randint(0, 4, (total,), generator=generator, device=device)
        angle = quarter_turns.float() * (math.pi / 2)
        cos, sin = torch.cos(angle).round(), torch.sin(angle).round()
    if spec.augment.translate > 0:
        # A shift of up to ``translate`` of the image side is 2 * translate in [-1, 1] coordinates.
        shift = 2 * spec.augment.translate
        centre_x = centre_x + _uniform(-shift, shift, total, generator, device)
        centre_y = centre_y + _uniform(-shift, shift, total, generator, device)
    # theta = diag(flip * half_w, half_h) @ rotation, then translate to the crop centre.
    theta = torch.stack(
        [
            torch.stack([flip * half_w * cos, -flip * half_w * sin, centre_x], dim=1),
            torch.stack([half_h * sin, half_h * cos, centre_y], dim=1),
        ],
        dim=1,
    )
    rows = shard_rows(spec.count, n, shard, device) if shard[1] > 1 else slice(None)
    shape = [spec.count * n, images.shape[1], spec.size, spec.size]
    grid = F.affine_grid(theta[rows].to(images.dtype), shape, align_corners=False)
    source = images.repeat(spec.count, 1, 1, 1)
    views = F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if spec.augment.blur_sigma > 0:
        sigma = _uniform(0.0, spec.augment.blur_sigma, total, generator, device)[rows]
        views = gaussian_blur(views, sigma, spec.augment.blur_sigma)
    factor = photometric_factors(spec.augment, total, images.shape[1], generator, device)
    if factor is not None:
        views = scale_flux(views, factor[rows].to(views.dtype))
    if spec.augment.drop_bands > 0:
        drop = torch.rand(total, generator=generator, device=device) < spec.augment.drop_bands
        band = torch.randint(0, images.shape[1], (total,), generator=generator, device=device)
        views = single_band(views, band[rows], drop[rows])
    if spec.augment.noise_std > 0:
        noise = torch.randn([total, *shape[1:]], generator=generator, device=device, dtype=views.dtype)
        views = views + spec.augment.noise_std * noise[rows]
    return views


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    r"""Blur each image ``i`` of (N, C, H, W) with an isotropic Gaussian of std ``sigma[i]`` pixels.

    A separable kernel :math:`k(x) \propto e^{-x^2 / 2\sigma^2}` on :math:`|x| \le \lceil 3\sigma_{max}\rceil`,
    applied as one grouped convolution per axis (a PSF-like smoothing; :math:`\sigma = 0` leaves the image as is).
    The radius comes from ``max_sigma``, not from ``sigma``, so no value is read back from the device.
    """
    n, c, h, w = images.shape
    radius = max(1, min(math.ceil(3 * max_sigma), (min(h, w) - 1) // 2))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    safe = sigma.to(images.dtype).clamp_min(1e-3).unsqueeze(1)
    kernel = torch.exp(-0.5 * (offsets / safe) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (N*C, K)
    flat = images.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def photometric_factors(augment: Augment, total: int, channels: int, generator: torch.Generator,
                        device) -> torch.Tensor | None:
    """The (total, 1 or C) factors on the flux above the sky of ``total`` views: flux scale × reddening × band
    gain, each drawn only when set (so a run without one draws what it drew before it existed); None if none is."""
    factor = None
    if augment.flux_scale is not None:
        low, high = augment.flux_scale
        factor = _uniform(math.log(low), math.log(high), total, generator, device).exp()[:, None]
    if augment.reddening > 0:
        coefficients = torch.tensor(extinction_coefficients(augment.extinction, channels), device=device)
        reddened = extinction_factors(_uniform(0.0, augment.reddening, total, generator, device), coefficients)
        factor = reddened if factor is None else factor * reddened
    if augment.band_gain > 0:
        gains = band_gains(augment.band_gain, total, channels, generator, device)
        factor = gains if factor is None else factor * gains
    return factor


def scale_flux(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    r"""Scale each image's flux above its sky level: :math:`x' = b + a\,(x - b)`.

    :math:`b` is the per-image, per-channel median (the sky dominates a centred
    cutout) and :math:`a` = ``factor[i]``, or ``factor[i, c]`` for one factor per
    channel; the background stays where it was.
    """
    sky = images.flatten(2).median(dim=2).values[..., None, None]
    return sky + factor.reshape(factor.shape[0], -1, 1, 1) * (images - sky)


def centre_view(images: torch.Tensor, size: int) -> torch.Tensor:
    """The deterministic evaluation view: the whole image resized to ``size``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def dihedral_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The 8 images of the dihedral group D4: each of 4 quarter turns, unflipped and flipped.

    Galaxy orientation on the sky is arbitrary, so averaging an encoder over
    these 8 copies gives an embedding invariant to 90° rotations and flips.
    """
    turns = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
    return turns + [turn.flip(-1) for turn in turns]
