"""Built-in objectives and regularisers (kind ``loss``)."""

from __future__ import annotations

import torch
from torch import nn

from registry import register
from registry.objective import Objective
from registry.sigreg import SIGReg
from registry.views import ViewSpec, random_views


@register("loss", "sigreg")
def sigreg(num_slices: int = 1024, knots: int = 17, t_max: float = 3.0) -> SIGReg:
    """SIGReg regulariser: Epps–Pulley statistic averaged over random 1-D projections (LeJEPA)."""
    return SIGReg(num_slices=num_slices, knots=knots, t_max=t_max)


def mlp_projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Three-layer MLP with BatchNorm, the projector of LeJEPA and SimCLR."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
    )


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
        num_slices: int,
        noise_std: float,
    ) -> None:
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must lie in [0, 1], got {lam}")
        if global_views < 1:
            raise ValueError("LeJEPA needs at least one global view")
        self.encoder = encoder
        self.lam = lam
        self.projector = mlp_projector(encoder.embed_dim, proj_hidden, proj_dim)
        self.sigreg = SIGReg(num_slices=num_slices)
        self.view_specs = [ViewSpec(global_views, global_size, global_scale, noise_std=noise_std)]
        if local_views > 0:
            self.view_specs.append(ViewSpec(local_views, local_size, local_scale, noise_std=noise_std))
        self.global_views = global_views

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = images.shape[0]
        # One encoder call per view resolution keeps every call a single large batch.
        embeddings = [self.encoder(random_views(images, spec, generator)) for spec in self.view_specs]
        projections = self.projector(torch.cat(embeddings)).float().view(-1, n, self.projector[-1].out_features)
        prediction = lejepa_prediction_loss(projections, self.global_views)
        regulariser = torch.stack([self.sigreg(view, step=step) for view in projections]).mean()
        loss = (1 - self.lam) * prediction + self.lam * regulariser
        return {"loss": loss, "pred": prediction.detach(), "sigreg": regulariser.detach()}


@register("loss", "lejepa")
def lejepa(
    encoder: nn.Module,
    lam: float = 0.05,
    global_views: int = 2,
    local_views: int = 6,
    global_size: int = 64,
    local_size: int = 32,
    global_scale: tuple[float, float] = (0.3, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.3),
    proj_dim: int = 128,
    proj_hidden: int = 512,
    num_slices: int = 1024,
    noise_std: float = 0.0,
) -> LeJEPA:
    """LeJEPA (Balestriero & LeCun 2025): global/local multi-view prediction + SIGReg, weight lam."""
    return LeJEPA(
        encoder, lam, global_views, local_views, global_size, local_size, tuple(global_scale), tuple(local_scale),
        proj_dim, proj_hidden, num_slices, noise_std,
    )
