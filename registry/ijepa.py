"""I-JEPA (Assran et al. 2023, arXiv 2301.08243) and the AstroJEPA seed's I-JEPA + SIGReg hybrid.

A context encoder sees the context patches; a predictor, queried with mask
tokens at the target positions, predicts the target encoder's layer-normalised
features of the target patches. The target encoder is an EMA of the context
encoder (:mod:`registry.ema`); its pooled full-view tokens are the
``embedding`` handed to the online probe. With ``lam > 0`` SIGReg (LeJEPA) acts on a
projection of the context encoder's mean-pooled tokens, which is the seed's hybrid objective.

As in the official code, each step first draws one random resized crop per image
(area fraction ``crop_scale``, 0.3–1 by default) at the encoder's ``img_size``; the
encoder's positional embedding is the fixed 2-D sine-cosine one, never trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from timm.layers import build_sincos2d_pos_embed
from torch import nn

from registry import PluginError
from registry.ema import ema_momentum, ema_update
from registry.maskers import Masks, patch_grid
from registry.objective import Objective
from registry.predictor import MaskedPredictor
from registry.sigreg import SIGReg
from registry.views import ViewSpec, random_views

PREDICTION_LOSSES = ("l2", "smooth-l1")


def prediction_loss(predicted: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    r"""I-JEPA prediction error averaged over target blocks, patches and features.

    ``l2``: :math:`\frac{1}{M}\sum_i \frac{1}{|B_i|}\sum_{j\in B_i}\|\hat s_{y_j} - s_{y_j}\|_2^2`
    (per feature; the paper's eq. 1 and the seed); ``smooth-l1``: the Huber loss
    with :math:`\beta = 1` that the official code uses.
    """
    if kind == "l2":
        return F.mse_loss(predicted, target)
    if kind == "smooth-l1":
        return F.smooth_l1_loss(predicted, target)
    raise PluginError(f"unknown prediction loss '{kind}'; use one of {', '.join(PREDICTION_LOSSES)}")


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``tokens`` (N, L, D) at ``indices`` (N, *S) -> (N, *S, D)."""
    flat = indices.flatten(1)
    picked = torch.gather(tokens, 1, flat.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    return picked.view(*indices.shape, tokens.shape[-1])


def fix_sincos_pos_embed(encoder: nn.Module) -> None:
    r"""Set a ViT encoder's positional embedding to the fixed 2-D sine-cosine one and freeze it.

    The official I-JEPA encoder (after MAE, He et al. 2022) uses
    :math:`\big(\sin(y\,\omega_k), \sin(x\,\omega_k), \cos(y\,\omega_k), \cos(x\,\omega_k)\big)_k`,
    :math:`\omega_k = 10000^{-k/(D/4)}`, for the patch at row :math:`y`, column :math:`x`
    (the same table the predictor uses), with ``requires_grad`` off. The values stay in
    the saved weights, so a rebuilt encoder loads them like any other parameter.
    """
    vit = encoder.backbone
    with torch.no_grad():
        table = build_sincos2d_pos_embed(list(vit.patch_embed.grid_size), vit.pos_embed.shape[-1])
        vit.pos_embed.copy_(table.unsqueeze(0))
    vit.pos_embed.requires_grad_(False)


class IJEPA(Objective):
    r"""I-JEPA, optionally with SIGReg on a projection :math:`g` of the mean-pooled context tokens :math:`\bar z`:

    .. math:: \mathcal L = (1-\lambda)\,\mathcal L_{pred} + \lambda\,\mathrm{SIGReg}(g(\bar z))

    ``lam=None`` is plain I-JEPA, with no SIGReg term and no projector. ``ema=0``
    is no EMA: the target encoder is reset to the context encoder after every
    step, so the targets are the context encoder's own features under stop-gradient.
    """

    def __init__(self, encoder: nn.Module, masker, predictor: MaskedPredictor, pred_loss: str,
                 ema: float, ema_end: float | None, lam: float | None, num_slices: int, img_size: int | None,
                 crop_scale: tuple[float, float] = (0.3, 1.0), projector: nn.Module | None = None) -> None:
        super().__init__()
        if not getattr(encoder, "is_vit", False):
            name = getattr(encoder, "timm_spec", {}).get("model_name", type(encoder).__name__)
            raise PluginError(f"I-JEPA predicts patch tokens and needs a ViT encoder (vit-t, vit-s, vit-b), not {name}")
        if pred_loss not in PREDICTION_LOSSES:
            raise PluginError(f"unknown prediction loss '{pred_loss}'; use one of {', '.join(PREDICTION_LOSSES)}")
        if lam is not None and not 0.0 <= lam <= 1.0:
            raise PluginError(f"lam must lie in [0, 1], got {lam}")
        if ema_end is None:
            ema_end = 1.0 if ema > 0 else 0.0
        if not 0.0 <= ema <= ema_end <= 1.0:
            raise PluginError(f"EMA momentum must satisfy 0 <= start <= end <= 1, got {ema} -> {ema_end}")
        if (lam is None) != (projector is None):
            raise PluginError("the I-JEPA + SIGReg hybrid needs a projector, and plain I-JEPA has none")
        fix_sincos_pos_embed(encoder)
        self.encoder = encoder
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.predictor = predictor
        self.masker = masker
        self.pred_loss = pred_loss
        self.ema_start, self.ema_end = ema, ema_end
        self.lam = lam
        self.img_size = img_size
        self.crop_scale = tuple(crop_scale)
        self.projector = projector
        self.sigreg = SIGReg(num_slices=num_slices) if lam is not None else None

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        view = ViewSpec(1, self.img_size or images.shape[-1], self.crop_scale)
        images = random_views(images, view, generator, self.shard)
        patch = self.encoder.patch_size
        masks: Masks = self.masker(images, patch, generator, self.shard)
        with torch.no_grad():
            tokens = self.target_encoder.forward_tokens(images)
            targets = gather_tokens(F.layer_norm(tokens.float(), tokens.shape[-1:]), masks.targets)
            # The l2 loss of predicting every target by the mean target: the shortcut monitor's scale.
            target_var = targets.flatten(0, -2).var(dim=0).mean()
            embedding = tokens.float().mean(1)
        context = self.encoder.forward_tokens(images, keep=masks.context)
        predicted = self.predictor(context, masks.context, masks.targets, patch_grid(images, patch))
        prediction = prediction_loss(predicted.float(), targets, self.pred_loss)
        if self.sigreg is None:
            return {"loss": prediction, "pred": prediction.detach(), "target_var": target_var, "embedding": embedding}
        # The final LayerNorm leaves every token, and so their mean, in a hyperplane (one direction of
        # zero variance) that no isotropic Gaussian fills; the projector's output has no such constraint.
        regulariser = self.sigreg(self.projector(context.mean(1)).float(), step=step)
        loss = (1 - self.lam) * prediction + self.lam * regulariser
        return {"loss": loss, "pred": prediction.detach(), "sigreg": regulariser.detach(), "target_var": target_var,
                "embedding": embedding}

    def on_step_end(self, step: int, total_steps: int) -> None:
        ema_update(self.target_encoder, self.encoder, ema_momentum(step, total_steps, self.ema_start, self.ema_end))


def default_predictor(embed_dim: int, predictor_dim: int | None, depth: int, num_heads: int | None) -> MaskedPredictor:
    """A predictor half as wide as the encoder (multiple of 32), with 32-d heads unless given."""
    width = predictor_dim or max(32, embed_dim // 2 // 32 * 32)
    return MaskedPredictor(embed_dim, width, depth, num_heads or max(1, width // 32))
