"""Built-in objectives and regularisers (kind ``loss``).

Every factory here is a registered plugin. ``pretrain`` passes each objective
the options it accepts among: ``encoder``, ``lam``, ``global_views``,
``local_views``, ``global_size``, ``local_size``, ``global_scale``,
``local_scale``, ``crop_ratio``, ``augment``, ``proj_dim``, ``proj_hidden``, ``proj_depth``,
``temperature``, ``masker``, ``ema``, ``img_size`` and ``pred_loss``. The math lives in the modules imported below.

Defaults follow the official LeJEPA code (Balestriero & LeCun 2025): its projector
is an MLP of hidden width 2048, and non-ViT encoders see global views only
(the paper's Algorithm 2), so LeJEPA's local views default to 6 for a ViT and
to none for any other encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from registry import PluginError, register
from registry.ijepa import IJEPA, default_predictor
from registry.maskers import MultiBlockMasker
from registry.objective import Objective
from registry.projector import mlp_projector
from registry.sigreg import SIGReg
from registry.two_view import SimCLR, VICReg
from registry.views import Augment, ViewSpec, random_views


# SimCLR's learnable temperature starts here (the value of MoCo v2 and CLIP).
LEARNT_TEMPERATURE_START = 0.07
# LeJEPA's local views per image when not given: the official recipe's 6 for ViTs, none for other encoders.
VIT_LOCAL_VIEWS = 6


def default_local_views(encoder: nn.Module) -> int:
    """LeJEPA's local-view count for ``encoder`` when the user sets none (Algorithm 2: global views only for non-ViTs)."""
    return VIT_LOCAL_VIEWS if getattr(encoder, "is_vit", False) else 0


@register("loss", "sigreg")
def sigreg(num_slices: int = 1024, knots: int = 17, t_max: float = 3.0) -> SIGReg:
    """SIGReg regulariser: Epps–Pulley statistic averaged over random 1-D projections (LeJEPA)."""
    return SIGReg(num_slices=num_slices, knots=knots, t_max=t_max)


def lejepa_prediction_loss(projections: torch.Tensor, global_views: int) -> torch.Tensor:
    r"""LeJEPA prediction term (Balestriero & LeCun 2025, eq. 15).

    .. math:: \mathcal L_{pred} = \frac{1}{V N K}\sum_{v,n}\Big\|\frac{1}{V_g}\sum_{g\le V_g} z_{g,n} - z_{v,n}\Big\|^2

    ``projections`` is (V, N, K) with the ``global_views`` global views first.
    """
    centres = projections[:global_views].mean(0)
    return (centres - projections).square().mean()


class LeJEPA(Objective):
    r"""LeJEPA: multi-view prediction of the global-view mean plus SIGReg.

    .. math:: \mathcal L = (1-\lambda)\,\mathcal L_{pred} + \lambda\,\frac1V\sum_v \mathrm{SIGReg}(z_v)
    """

    def __init__(
        self,
        encoder: nn.Module,
        lam: float,
        global_views: int,
        local_views: int,
        global_size: int,
        local_size: int,
        global_scale: tuple[float, float],
        local_scale: tuple[float, float],
        proj_dim: int,
        proj_hidden: int,
        proj_depth: int,
        num_slices: int,
        augment: Augment,
        crop_ratio: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise PluginError(f"lam must lie in [0, 1], got {lam}")
        if global_views < 1:
            raise PluginError("LeJEPA needs at least one global view")
        self.encoder = encoder
        self.lam = lam
        self.projector = mlp_projector(encoder.embed_dim, proj_hidden, proj_dim, proj_depth)
        self.sigreg = SIGReg(num_slices=num_slices)
        self.view_specs = [ViewSpec(global_views, global_size, global_scale, crop_ratio, augment)]
        if local_views > 0:
            self.view_specs.append(ViewSpec(local_views, local_size, local_scale, crop_ratio, augment))
        self.global_views = global_views

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = images.shape[0]
        # One encoder call per view resolution keeps every call a single large batch.
        embeddings = [self.encoder(random_views(images, spec, generator, self.shard)) for spec in self.view_specs]
        projections = self.projector(torch.cat(embeddings)).float().view(-1, n, self.projector[-1].out_features)
        prediction = lejepa_prediction_loss(projections, self.global_views)
        regulariser = torch.stack([self.sigreg(view, step=step) for view in projections]).mean()
        loss = (1 - self.lam) * prediction + self.lam * regulariser
        # What pred would be if each view were predicted by the mean over images: the shortcut monitor's scale.
        spread = projections.detach().var(dim=1).mean()
        return {"loss": loss, "pred": prediction.detach(), "sigreg": regulariser.detach(), "projection_var": spread,
                "embedding": embeddings[0][:n].detach().float()}


@register("loss", "lejepa")
def lejepa(
    encoder: nn.Module,
    lam: float = 0.05,
    global_views: int = 2,
    local_views: int | None = None,
    global_size: int = 64,
    local_size: int = 32,
    global_scale: tuple[float, float] = (0.3, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.3),
    proj_dim: int = 128,
    proj_hidden: int = 2048,
    proj_depth: int = 3,
    num_slices: int = 1024,
    augment: Augment | None = None,
    crop_ratio: tuple[float, float] = (1.0, 1.0),
) -> LeJEPA:
    """LeJEPA (Balestriero & LeCun 2025): global/local multi-view prediction + SIGReg, weight lam."""
    if local_views is None:
        local_views = default_local_views(encoder)
    return LeJEPA(
        encoder, lam, global_views, local_views, global_size, local_size, tuple(global_scale), tuple(local_scale),
        proj_dim, proj_hidden, proj_depth, num_slices, augment or Augment(), tuple(crop_ratio),
    )


@register("loss", "ijepa")
def ijepa(
    encoder: nn.Module,
    masker=None,
    pred_loss: str = "l2",
    ema: float = 0.996,
    ema_end: float | None = None,
    predictor_dim: int | None = None,
    predictor_depth: int = 6,
    predictor_heads: int | None = None,
    img_size: int | None = None,
    global_scale: tuple[float, float] = (0.3, 1.0),
) -> IJEPA:
    """I-JEPA (Assran et al. 2023): predict EMA-target patch features of masked blocks from the context (ViT only)."""
    predictor = default_predictor(encoder.embed_dim, predictor_dim, predictor_depth, predictor_heads)
    return IJEPA(encoder, masker or MultiBlockMasker(), predictor, pred_loss, ema, ema_end, None, 0, img_size,
                 tuple(global_scale))


@register("loss", "ijepa-sigreg")
def ijepa_sigreg(
    encoder: nn.Module,
    masker=None,
    lam: float = 0.05,
    pred_loss: str = "l2",
    ema: float = 0.996,
    ema_end: float | None = None,
    predictor_dim: int | None = None,
    predictor_depth: int = 6,
    predictor_heads: int | None = None,
    num_slices: int = 1024,
    img_size: int | None = None,
    global_scale: tuple[float, float] = (0.3, 1.0),
    proj_dim: int = 128,
    proj_hidden: int = 512,
    proj_depth: int = 3,
) -> IJEPA:
    """I-JEPA + SIGReg on projected pooled context embeddings (AstroJEPA seed): (1-lam)*pred + lam*SIGReg."""
    predictor = default_predictor(encoder.embed_dim, predictor_dim, predictor_depth, predictor_heads)
    projector = mlp_projector(encoder.embed_dim, proj_hidden, proj_dim, proj_depth)
    return IJEPA(encoder, masker or MultiBlockMasker(), predictor, pred_loss, ema, ema_end, lam, num_slices, img_size,
                 tuple(global_scale), projector)


def _two_views(global_size: int, global_scale: tuple[float, float], crop_ratio: tuple[float, float],
               augment: Augment | None) -> ViewSpec:
    """The two augmented views per image of SimCLR and VICReg."""
    return ViewSpec(2, global_size, tuple(global_scale), tuple(crop_ratio), augment or Augment())


@register("loss", "simclr")
def simclr(
    encoder: nn.Module,
    global_size: int = 64,
    global_scale: tuple[float, float] = (0.3, 1.0),
    proj_hidden: int = 512,
    proj_dim: int = 128,
    proj_depth: int = 3,
    temperature: float | None = None,
    augment: Augment | None = None,
    crop_ratio: tuple[float, float] = (1.0, 1.0),
) -> SimCLR:
    """SimCLR (Chen et al. 2020): NT-Xent over 2N views, 128-d projection; temperature learnt from 0.07, or fixed."""
    return SimCLR(encoder, _two_views(global_size, global_scale, crop_ratio, augment), proj_hidden, proj_dim, LEARNT_TEMPERATURE_START if temperature is None else temperature,
                  learn_temperature=temperature is None, proj_depth=proj_depth)


@register("loss", "vicreg")
def vicreg(
    encoder: nn.Module,
    global_size: int = 64,
    global_scale: tuple[float, float] = (0.3, 1.0),
    proj_hidden: int = 1024,
    proj_dim: int = 1024,
    proj_depth: int = 3,
    weights: tuple[float, float, float] = (25.0, 25.0, 1.0),
    augment: Augment | None = None,
    crop_ratio: tuple[float, float] = (1.0, 1.0),
) -> VICReg:
    """VICReg (Bardes et al. 2022): invariance + variance + covariance terms, weights 25/25/1 (baseline)."""
    return VICReg(encoder, _two_views(global_size, global_scale, crop_ratio, augment), proj_hidden, proj_dim, tuple(weights), proj_depth=proj_depth)
