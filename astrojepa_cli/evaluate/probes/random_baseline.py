"""The random-weights baseline: the same network nobody trained, made as strong as random weights get.

A pretrained encoder is worth its training only by what it adds over the same architecture with
random weights, so that floor must not be set artificially low. Two defects of a freshly built
network would set it low:

* timm zero-initialises the last norm of every residual branch (``zero_init_last``, which helps
  training start), so at initialisation every branch outputs 0 and only the stem and the strided
  shortcuts remain: at 32 px timm's ResNet-18 embedding depends on 36 of the 1,024 pixels;
* a BatchNorm layer at initialisation normalises with running statistics of 0 and 1, not those
  of the images, so the scale of every stage is arbitrary.

So the baseline is the stronger, by the probe's own headline score, of two networks built from the
same seed, each with its BatchNorm statistics re-estimated on the store's train images: the
architecture's default initialisation (``default``) and the same weights with every zeroed residual
norm set to 1 (``no-zero-init``). An architecture without zeroed branches has one network only; one
without BatchNorm needs no re-estimation. Every network's score is kept in ``random_inits``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import encoder_img_size
from registry.views import centre_view

DEFAULT = "default"
NO_ZERO_INIT = "no-zero-init"
NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
CHUNK = 256


def revive_residual_branches(encoder: nn.Module) -> bool:
    """Set to 1 the zeroed norm weights of residual blocks (timm's ``zero_init_last``); whether any were zero.

    A timm block that zero-initialises its last norm has a ``zero_init_last`` method; an all-zero
    norm weight inside such a block can only come from that initialisation.
    """
    revived = False
    for block in encoder.modules():
        if not hasattr(block, "zero_init_last"):
            continue
        for norm in block.modules():
            weight = getattr(norm, "weight", None)
            if isinstance(norm, NORMS) and weight is not None and not weight.detach().any():
                with torch.no_grad():
                    weight.fill_(1.0)
                revived = True
    return revived


@torch.no_grad()
def reestimate_batchnorm(encoder: nn.Module, store_path: Path, device: torch.device | str,
                         stretch: str = "none", chunk: int = CHUNK) -> int:
    r"""Replace every BatchNorm's running mean and variance by their averages over the store's train images.

    Each BatchNorm is reset and put in training mode with ``momentum=None`` (a cumulative average
    over batches), every other layer stays in evaluation mode, and the train images are passed once,
    without gradients, as the features see them (the evaluation view, normalised as in training):

    .. math:: \hat\mu = \frac{1}{B}\sum_{b=1}^{B} \mu_b, \qquad \hat\sigma^2 = \frac{1}{B}\sum_{b=1}^{B} \sigma_b^2

    over the B chunks of ``chunk`` images (the "precise BN" statistics of Wu & Johnson 2021,
    arXiv 2105.07576). Returns how many BatchNorm layers were re-estimated (0: nothing to do).
    """
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    device = torch.device(device)
    meta = store.load(store_path, with_images=False)
    train = meta.split == "train"
    normalise = loader.Normaliser.for_store(store_path, device, stretch)
    img_size = encoder_img_size(encoder, store.read_info(store_path).image_shape[0])
    encoder.to(device).eval()
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    pending = np.empty((0, *meta.images.shape[1:]), dtype=meta.images.dtype)
    for start, images in store.iter_image_chunks(store_path, chunk=chunk):
        pending = np.concatenate([pending, images[train[start:start + len(images)]]])
        while len(pending) >= chunk:
            encoder(centre_view(normalise(loader.channels_first(pending[:chunk], device)), img_size))
            pending = pending[chunk:]
    if len(pending) > 1:  # one image has no variance to estimate
        encoder(centre_view(normalise(loader.channels_first(pending, device)), img_size))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    encoder.eval()
    return len(norms)


def random_networks(build: Callable[[], nn.Module], seed: int, store_path: Path, device: torch.device | str,
                    stretch: str = "none") -> dict[str, nn.Module]:
    """The random-weights networks of the baseline, by name: ``build()`` under ``seed`` (``default``) and,
    when it has zeroed residual branches, the same weights with them revived (``no-zero-init``);
    each with its BatchNorm statistics re-estimated on the train images."""
    torch.manual_seed(seed)
    networks = {DEFAULT: build()}
    torch.manual_seed(seed)
    revived = build()
    if revive_residual_branches(revived):
        networks[NO_ZERO_INIT] = revived
    for network in networks.values():
        reestimate_batchnorm(network, store_path, device, stretch)
    return networks


def headline(result: dict) -> float | None:
    """The number a probe result is judged by, higher better: balanced accuracy, the mean balanced
    accuracy of a curve, or minus the RMSE of a regression; None when there is none."""
    if "balanced_accuracy" in result:
        return float(result["balanced_accuracy"])
    if result.get("curve") and "balanced_accuracy" in result["curve"][0]:
        return float(np.mean([point["balanced_accuracy"] for point in result["curve"]]))
    if "rmse" in result:
        return -float(result["rmse"])
    return None


def stronger(results: dict[str, dict]) -> dict:
    """The result of the network with the higher :func:`headline` (the first on a tie or without one),
    with every network's headline under ``random_inits`` and the one kept under ``random_init``."""
    scores = {name: headline(result) for name, result in results.items()}
    chosen = next(iter(results))
    for name, score in scores.items():
        if score is not None and scores[chosen] is not None and score > scores[chosen]:
            chosen = name
    return {**results[chosen], "random_init": chosen, "random_inits": scores}


def random_weights_result(build: Callable[[], nn.Module], seed: int, store_path: Path, device: torch.device | str,
                          stretch: str, score: Callable[[nn.Module], dict]) -> dict:
    """``score`` of the random-weights baseline: the stronger of :func:`random_networks`."""
    networks = random_networks(build, seed, store_path, device, stretch)
    return stronger({name: score(network) for name, network in networks.items()})
