"""How easily the objective's task is solved: a shortcut monitor on one fixed batch, at every epoch end.

A self-supervised task that the network solves without learning morphology (two
views that share an exact colour are matched by colour) drives the loss towards
zero while the embedding learns little. Each objective already returns the terms
needed to tell (:mod:`registry.two_view`, :mod:`registry.losses`,
:mod:`registry.ijepa`); the functions here turn them into scale-free measures:

- SimCLR: the positive pair's top-1 retrieval among the other 2N−1 views, and the
  NT-Xent loss over log(2N−1), its value for embeddings that know nothing;
- LeJEPA: the prediction (invariance) term over the projections' variance across images;
- I-JEPA: the prediction loss over the variance of the targets, the loss of predicting their mean.
"""

from __future__ import annotations

import math

import torch

from astrojepa_cli.data import loader
from registry.objective import Objective

# Each measure's limit, and whether "solved" is at or above it (else at or below).
SOLVED = {
    "shortcut_retrieval": (0.95, True),
    "shortcut_invariance_ratio": (0.05, False),
    "shortcut_prediction_ratio": (0.05, False),
}
HARDER_VIEWS = {"reddening": "--reddening", "band_gain": "--band-gain", "drop_bands": "--drop-bands",
                "blur": "--blur", "view_noise": "--view-noise", "translate": "--translate"}


def ntxent_loss_ratio(loss: float, n_images: int) -> float:
    r"""NT-Xent over its uninformed value: :math:`\ell / \log(2N-1)`.

    With all 2N views equally similar every anchor's softmax is uniform over its
    2N−1 candidates, so :math:`\ell = \log(2N-1)`; the ratio is 1 there and 0
    when every positive is found with certainty.
    """
    return loss / math.log(2 * n_images - 1)


def variance_ratio(loss: float, variance: float) -> float:
    """A squared-error loss over the variance of what it predicts (the loss of predicting the mean):
    1 for a prediction that knows nothing, 0 for a perfect one."""
    return loss / max(variance, 1e-12)


def shortcut_measures(terms: dict[str, float], n_images: int) -> dict[str, float]:
    """The scale-free measures of an objective's ``terms`` on a batch of ``n_images`` images (global batch)."""
    measures = {}
    if "retrieval" in terms:
        measures["shortcut_retrieval"] = terms["retrieval"]
        measures["shortcut_loss_ratio"] = ntxent_loss_ratio(terms["loss"], n_images)
    if "projection_var" in terms:
        measures["shortcut_invariance_ratio"] = variance_ratio(terms["pred"], terms["projection_var"])
    if "target_var" in terms:
        measures["shortcut_prediction_ratio"] = variance_ratio(terms["pred"], terms["target_var"])
    return measures


def solved(summary: dict) -> str | None:
    """The first measure of an epoch ``summary`` past its :data:`SOLVED` limit, as ``name value``; else None."""
    for key, (limit, at_least) in SOLVED.items():
        value = summary.get(key)
        if value is not None and (value >= limit if at_least else value <= limit):
            return f"{key.removeprefix('shortcut_').replace('_', ' ')} {value:.3g}"
    return None


def shortcut_warning(epochs: list[dict], config) -> str | None:
    """One line when the latest epoch summary of ``epochs`` is the first to find the task solved.

    It names the view options of ``config`` (a ``PretrainConfig``) still off that
    would make the views harder to match; an I-JEPA run is pointed to its masks.
    """
    if not epochs or not (measure := solved(epochs[-1])) or any(solved(summary) for summary in epochs[:-1]):
        return None
    off = [flag for field, flag in HARDER_VIEWS.items() if not getattr(config, field, None)]
    if "shortcut_prediction_ratio" in epochs[-1]:
        advice = "harder masks (see --masker) would help"
    else:
        advice = f"harder views ({', '.join(off) if off else 'stronger settings of the view options'}) would help"
    return (f"epoch {epochs[-1]['epoch']}: the {config.loss} task looks solved on a fixed batch ({measure}), "
            f"maybe by a shortcut such as colour; {advice}")


@torch.no_grad()
def shortcut_monitors(objective: Objective, images: loader.DeviceImages, rows: torch.Tensor, n_images: int,
                      seed: int) -> dict[str, float]:
    """The measures of ``objective`` (eval mode, fp32) on images ``rows``, its views drawn by a generator
    seeded by ``seed``.

    The same rows and seed every epoch make the values comparable across epochs.
    Under DDP each rank passes its share of the ``n_images``-image batch, and
    rank 0's measures are recorded.
    """
    was_training = objective.training
    objective.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    terms = objective(images.batch(rows.to(images.device)), 0, generator)
    objective.train(was_training)
    return shortcut_measures({k: float(v) for k, v in terms.items() if k != "embedding"}, n_images)
