"""Two-view objectives: two augmented views per image, an encoder, a projector and a loss on the pair.

SimCLR (Chen et al. 2020) and VICReg (Bardes et al. 2022) differ only in the
loss they put on the two projected views, so they share this class.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from registry import PluginError
from registry.ntxent import nt_xent_logits, positive_retrieval
from registry.objective import Objective
from registry.projector import mlp_projector
from registry.views import ViewSpec, random_views
from registry.vicreg import vicreg_terms

MIN_TEMPERATURE = 0.01


class TwoViewObjective(Objective):
    """Views (random resized crop, flip, 90° rotation) -> encoder -> MLP projector -> :meth:`criterion`."""

    def __init__(self, encoder: nn.Module, views: ViewSpec, proj_hidden: int, proj_dim: int,
                 proj_depth: int = 3) -> None:
        super().__init__()
        if views.count != 2:
            raise PluginError(f"a two-view objective needs 2 views per image, not {views.count}")
        self.encoder = encoder
        self.projector = mlp_projector(encoder.embed_dim, proj_hidden, proj_dim, proj_depth)
        self.views = views

    def criterion(self, view_a: torch.Tensor, view_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = images.shape[0]
        embeddings = self.encoder(random_views(images, self.views, generator, self.shard))
        projections = self.projector(embeddings).float()
        return {**self.criterion(projections[:n], projections[n:]), "embedding": embeddings[:n].detach().float()}


class SimCLR(TwoViewObjective):
    r"""SimCLR: NT-Xent between the two views' projections, with a fixed or a learnable temperature.

    A learnable temperature is learnt as :math:`\log\tau` from ``temperature`` and
    kept above 0.01 so the logits stay bounded; a fixed one (SimCLR's own choice,
    e.g. 0.1–0.5) is a buffer.
    """

    def __init__(self, encoder: nn.Module, views: ViewSpec, proj_hidden: int, proj_dim: int,
                 temperature: float, learn_temperature: bool = True, proj_depth: int = 3) -> None:
        super().__init__(encoder, views, proj_hidden, proj_dim, proj_depth)
        log_temperature = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            self.register_buffer("log_temperature", log_temperature)

    def criterion(self, view_a: torch.Tensor, view_b: torch.Tensor) -> dict[str, torch.Tensor]:
        temperature = self.log_temperature.exp().clamp(min=MIN_TEMPERATURE)
        logits, positives = nt_xent_logits(view_a, view_b, temperature)
        return {"loss": F.cross_entropy(logits, positives), "temperature": temperature.detach(),
                "retrieval": positive_retrieval(logits.detach(), positives)}


class VICReg(TwoViewObjective):
    r"""VICReg: :math:`\lambda s + \mu v + \nu c` on the two views' projections (defaults 25, 25, 1)."""

    def __init__(self, encoder: nn.Module, views: ViewSpec, proj_hidden: int, proj_dim: int,
                 weights: tuple[float, float, float], proj_depth: int = 3) -> None:
        super().__init__(encoder, views, proj_hidden, proj_dim, proj_depth)
        self.weights = dict(zip(("invariance", "variance", "covariance"), weights))

    def criterion(self, view_a: torch.Tensor, view_b: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = vicreg_terms(view_a, view_b)
        loss = sum(self.weights[name] * value for name, value in terms.items())
        return {"loss": loss, **{name: value.detach() for name, value in terms.items()}}
