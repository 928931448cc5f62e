"""Photometric view changes that keep morphology: interstellar reddening, per-band gain, single-band views.

Two views of one galaxy that differ only by crop and orientation share its exact
colour, and the colour of its field stars, so a contrastive objective can match
them by colour alone. Surveys see the same galaxy through different foreground
dust and with different per-band calibrations, and sometimes in one band only;
drawing those changes per view leaves shape and structure as the clue that
survives (Hayat et al. 2021, ApJL 911 L33; Stein et al. 2021, arXiv 2110.00023).

The factors act on the flux above each view's sky level (see
:func:`registry.views.scale_flux`), so the background stays where it was.
"""

from __future__ import annotations

import torch

# Extinction A_band / E(B-V) for R_V = 3.1: Schlafly & Finkbeiner 2011, ApJ 737, 103, Table 6 (SDSS bands).
SDSS_EXTINCTION = {"u": 4.239, "g": 3.303, "r": 2.285, "i": 1.698, "z": 1.263}
# An SDSS gri colour composite (the survey's RGB cutouts) puts i in red, r in green and g in blue
# (Lupton et al. 2004, PASP 116, 133), so a 3-channel store holds the bands in this order.
COMPOSITE_BANDS = ("i", "r", "g")


def extinction_coefficients(given: tuple[float, ...] | None, channels: int) -> tuple[float, ...]:
    """The per-channel extinction coefficients R_c for ``channels``-channel images.

    ``given`` (one per channel) wins; without it a 3-channel store is taken to be
    an SDSS gri composite in RGB order (:data:`COMPOSITE_BANDS`). Any other
    channel count needs them given, else ``ValueError``.
    """
    if given is not None:
        if len(given) != channels:
            raise ValueError(f"{len(given)} extinction coefficient(s) given for {channels}-channel images; "
                             f"give one per channel")
        return tuple(given)
    if channels == 3:
        return tuple(SDSS_EXTINCTION[band] for band in COMPOSITE_BANDS)
    raise ValueError(f"reddening needs one extinction coefficient per channel for {channels}-channel images "
                     "(the default is SDSS gri's, for 3-channel composites); give them with --extinction-coefficients")


def extinction_factors(ebv: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    r"""Per-view, per-channel flux factors of a foreground dust screen of colour excess ``ebv`` (N,).

    .. math:: f_{n,c} = 10^{-0.4\,R_c\,E(B-V)_n}

    with :math:`R_c` = ``coefficients`` (C,), the extinction :math:`A_c / E(B-V)`
    of channel :math:`c` (Schlafly & Finkbeiner 2011, Table 6). Bluer bands have larger
    :math:`R_c`, so a larger :math:`E(B-V)` both dims and reddens the source.
    """
    return torch.pow(10.0, -0.4 * ebv[:, None] * coefficients[None, :])


def band_gains(sigma: float, n: int, channels: int, generator: torch.Generator, device) -> torch.Tensor:
    r"""Per-view, per-channel log-normal gains :math:`g_{n,c} = e^{\epsilon_{n,c}}`,
    :math:`\epsilon \sim \mathcal N(0, \sigma^2)`: an independent calibration error of every band of every view."""
    return (sigma * torch.randn(n, channels, generator=generator, device=device)).exp()


def single_band(images: torch.Tensor, band: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Where ``drop[i]``, view ``i`` of (N, C, H, W) becomes channel ``band[i]`` copied into every channel.

    One real band, not a mean of bands: the view is the galaxy as a single-band
    survey would see it, with no colour left to match on.
    """
    n, channels, height, width = images.shape
    chosen = images.gather(1, band.view(n, 1, 1, 1).expand(n, 1, height, width))
    return torch.where(drop.view(n, 1, 1, 1), chosen.expand(n, channels, height, width), images)
