"""SIGReg: Sketched Isotropic Gaussian Regularization (Balestriero & LeCun 2025, arXiv 2511.08544).

Two separable pieces, as in the paper:

* :class:`EppsPulley` — a univariate goodness-of-fit statistic against N(0, 1);
* :class:`SIGReg` — the slicing wrapper that projects (N, D) embeddings onto
  random unit directions and averages the univariate statistic over them.
"""

from __future__ import annotations

import torch
from torch import nn

from registry import PluginError
from registry.collectives import world_mean, world_size


class EppsPulley(nn.Module):
    r"""Epps–Pulley statistic of 1-D samples against the standard normal (LeJEPA eq. 9).

    .. math::

        T = N \int_{-t_{max}}^{t_{max}} \left|\hat\varphi_N(t) - e^{-t^2/2}\right|^2 e^{-t^2/2}\,dt,
        \qquad \hat\varphi_N(t) = \frac1N \sum_n e^{i t x_n}

    The integrand is even in ``t`` (``φ(-t)`` is the conjugate of ``φ(t)``), so it
    is integrated with the trapezoid rule on ``[0, t_max]`` and the weights are
    doubled. Knots, weights and the target characteristic function are buffers
    computed once; ``forward`` is only the statistic. Under DDP the empirical
    characteristic function is averaged over ranks, so ``N`` is the global count.
    """

    def __init__(self, knots: int = 17, t_max: float = 3.0) -> None:
        super().__init__()
        if knots < 2 or t_max <= 0:
            raise PluginError("EppsPulley needs knots >= 2 and t_max > 0")
        t = torch.linspace(0.0, t_max, knots)
        step = t_max / (knots - 1)
        trapezoid = torch.full((knots,), step)
        trapezoid[[0, -1]] = step / 2
        gaussian_cf = torch.exp(-0.5 * t.square())
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("gaussian_cf", gaussian_cf, persistent=False)
        self.register_buffer("weights", 2.0 * trapezoid * gaussian_cf, persistent=False)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """``samples``: (N, K) — K independent 1-D samples of size N. Returns (K,) statistics."""
        samples = samples.float()
        phase = samples.unsqueeze(-1) * self.t  # (N, K, knots)
        cos_mean = world_mean(torch.cos(phase).mean(0))
        sin_mean = world_mean(torch.sin(phase).mean(0))
        squared_error = (cos_mean - self.gaussian_cf).square() + sin_mean.square()
        return squared_error @ self.weights * (samples.shape[0] * world_size())


def random_directions(dim: int, num_slices: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(dim, num_slices) unit-norm Gaussian directions drawn from a generator seeded by ``seed``.

    The same seed gives the same directions on every DDP rank.
    """
    generator = torch.Generator(device=device).manual_seed(int(seed))
    directions = torch.randn(dim, num_slices, generator=generator, device=device)
    return directions / directions.norm(dim=0, keepdim=True)


class SIGReg(nn.Module):
    r"""Sketched Isotropic Gaussian Regularization (LeJEPA Def. 3 / eq. 10).

    .. math::

        \mathrm{SIGReg}(Z) = \frac1K \sum_{k=1}^{K} T\!\left(Z a_k\right),
        \qquad a_k \sim \mathrm{Unif}(S^{D-1})

    with ``T`` the Epps–Pulley statistic. Directions are redrawn at every call
    from a generator seeded by ``step`` (identical across ranks), or taken
    from ``directions`` (D × K) when given, e.g. for tests.
    """

    def __init__(self, num_slices: int = 1024, knots: int = 17, t_max: float = 3.0) -> None:
        super().__init__()
        self.num_slices = num_slices
        self.univariate = EppsPulley(knots=knots, t_max=t_max)

    def forward(self, embeddings: torch.Tensor, step: int = 0, directions: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings.ndim != 2:
            raise PluginError(f"SIGReg expects (N, D) embeddings, got shape {tuple(embeddings.shape)}")
        if directions is None:
            directions = random_directions(embeddings.shape[1], self.num_slices, step, embeddings.device)
        return self.univariate(embeddings.float() @ directions.float()).mean()
