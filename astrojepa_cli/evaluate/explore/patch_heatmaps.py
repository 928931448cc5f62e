"""I-JEPA patch heatmaps: where, in one image, the predictor gets the target encoder's patch features right.

The run's whole objective (context encoder, EMA target encoder, predictor) is
rebuilt from its manifest and ``state.safetensors``; one image is masked with
the run's own masker, and every target patch gets the cosine similarity and the
mean squared error between its predicted and its (layer-normed) target features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from astrojepa_cli.data import loader, store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import images_at, row_of_id
from astrojepa_cli.evaluate.figures.labels import titled
from astrojepa_cli.evaluate.figures.plotting import display_image, plt
from astrojepa_cli.runs import Run, load_tensors, run_stretch
from registry.ijepa import IJEPA, gather_tokens
from registry.maskers import patch_grid
from registry.objective import build_objective
from registry.objective_config import ObjectiveConfig
from registry.views import centre_view

STATE_FILE = "state.safetensors"
OBJECTIVE_PREFIX = "objective."


@dataclass
class PatchErrors:
    """Per target patch of one image: ``cosine`` and ``mse`` (T, K_t) at ``targets`` (T, K_t) on ``grid``."""

    grid: tuple[int, int]
    context: np.ndarray
    targets: np.ndarray
    cosine: np.ndarray
    mse: np.ndarray


def rebuild_ijepa(run: Run, device: torch.device) -> IJEPA:
    """The run's I-JEPA objective with its trained weights; a clear error for other objectives."""
    config = ObjectiveConfig.from_json(run.manifest["config"])
    dataset = run.manifest["dataset"]
    objective = build_objective(config, dataset["channels"], config.img_size or dataset["image_shape"][0])
    if not isinstance(objective, IJEPA):
        raise UserError(f"patch heatmaps need an I-JEPA run (--loss ijepa or ijepa-sigreg); run {run.id} "
                        f"was trained with {config.loss}")
    tensors = load_tensors(run.dir / STATE_FILE)
    objective.load_state_dict({k[len(OBJECTIVE_PREFIX):]: v for k, v in tensors.items()
                               if k.startswith(OBJECTIVE_PREFIX)})
    return objective.to(device).eval()


@torch.no_grad()
def patch_errors(objective: IJEPA, images: torch.Tensor, seed: int = 0) -> PatchErrors:
    r"""Mask one normalised image (1, C, H, W) and score the predictor on each target patch.

    .. math:: \cos_j = \frac{\hat s_j \cdot s_j}{\|\hat s_j\|\,\|s_j\|}, \qquad
              \mathrm{MSE}_j = \frac1D \|\hat s_j - s_j\|^2

    with :math:`s_j` the layer-normed target-encoder feature of patch :math:`j`
    (the I-JEPA target) and :math:`\hat s_j` the predictor's output.
    """
    patch = objective.encoder.patch_size
    generator = torch.Generator(device=images.device).manual_seed(seed)
    masks = objective.masker(images, patch, generator)
    tokens = objective.target_encoder.forward_tokens(images).float()
    targets = gather_tokens(F.layer_norm(tokens, tokens.shape[-1:]), masks.targets)
    context = objective.encoder.forward_tokens(images, keep=masks.context)
    predicted = objective.predictor(context, masks.context, masks.targets, patch_grid(images, patch)).float()
    return PatchErrors(
        grid=patch_grid(images, patch),
        context=masks.context[0].cpu().numpy(),
        targets=masks.targets[0].cpu().numpy(),
        cosine=F.cosine_similarity(predicted, targets, dim=-1)[0].cpu().numpy(),
        mse=(predicted - targets).square().mean(-1)[0].cpu().numpy(),
    )


def on_grid(grid: tuple[int, int], indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Scatter per-patch ``values`` onto the patch grid; patches hit twice are averaged, the rest NaN."""
    total, count = np.zeros(grid[0] * grid[1]), np.zeros(grid[0] * grid[1])
    np.add.at(total, indices.ravel(), values.ravel())
    np.add.at(count, indices.ravel(), 1)
    with np.errstate(invalid="ignore"):
        return (total / np.where(count > 0, count, np.nan)).reshape(grid)


def heatmap_figure(image: np.ndarray, errors: PatchErrors, title: str):
    """Image, context mask, target blocks, then per-patch cosine similarity and MSE on the patch grid."""
    rows, cols = errors.grid
    extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    context = np.zeros(rows * cols)
    context[errors.context] = 1
    figure, axes = plt.subplots(1, 5, figsize=(17, 3.8))
    shown = display_image(image)
    for axis in axes[:3]:
        axis.imshow(shown, cmap="gray", extent=extent)
    axes[0].set_title("image")
    axes[1].imshow(context.reshape(rows, cols), cmap=ListedColormap(["black", "tab:green"]), alpha=0.45,
                   extent=extent, vmin=0, vmax=1)
    axes[1].set_title(f"context ({len(errors.context)} patches)")
    axes[1].legend(handles=[Patch(color="tab:green", alpha=0.6, label="context"),
                            Patch(color="black", alpha=0.6, label="hidden")], loc="lower right", fontsize=7)
    colours = plt.get_cmap("tab10")
    for number, block in enumerate(errors.targets):
        # Target blocks are rectangles that may overlap: draw each one's outline.
        block_rows, block_cols = np.unravel_index(np.unique(block), errors.grid)
        axes[2].add_patch(Rectangle((block_cols.min() - 0.5, block_rows.min() - 0.5), np.ptp(block_cols) + 1,
                                    np.ptp(block_rows) + 1, fill=False, linewidth=2.5,
                                    edgecolor=colours(number % 10), label=f"target block {number + 1}"))
    axes[2].set_title(f"{len(errors.targets)} target blocks")
    axes[2].legend(loc="lower right", fontsize=7)
    for axis, values, name, cmap in ((axes[3], errors.cosine, "cosine similarity", "viridis"),
                                     (axes[4], errors.mse, "MSE", "magma")):
        image_map = axis.imshow(on_grid(errors.grid, errors.targets, values), cmap=cmap, extent=extent)
        figure.colorbar(image_map, ax=axis, fraction=0.046, label=f"{name} (predicted vs target)")
        axis.set_title(f"per-patch {name}")
    for axis in axes:
        axis.set_xlabel("patch column")
        axis.set_ylabel("patch row")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def patch_heatmap_figure(run: Run, store_path: Path, object_id: str, device: torch.device, seed: int = 0,
                         title: str | None = None):
    """The heatmap figure of the store object ``object_id`` under ``run``'s I-JEPA objective (``title``:
    a line above the figure's own, from ``plot --title``)."""
    objective = rebuild_ijepa(run, device)
    row = row_of_id(store.load(store_path, with_images=False).ids, object_id)
    image = images_at(store_path, np.array([row]))[0]
    normalise = loader.Normaliser.for_store(store_path, device, run_stretch(run.manifest))
    img_size = int(objective.encoder.timm_spec.get("img_size", image.shape[0]))
    pixels = centre_view(normalise(loader.channels_first(image[None], device)), img_size)
    errors = patch_errors(objective, pixels, seed)
    return heatmap_figure(image, errors, titled(f"I-JEPA predictions for {object_id}", title))
