"""SIGReg computes the Epps–Pulley statistic it claims to, and separates Gaussian from non-Gaussian embeddings.

The DDP check (2 gloo processes equal one process) is in test_ddp_equivalence.py.
"""

from __future__ import annotations

import math

import pytest
import torch

import registry
from registry.sigreg import EppsPulley, random_directions

N, D = 4096, 16


def _sigreg(**options):
    return registry.create("loss", "sigreg", **options)


@pytest.fixture(scope="module")
def gaussian() -> torch.Tensor:
    return torch.randn(N, D, generator=torch.Generator().manual_seed(0))


def test_isotropic_gaussian_scores_its_null_expectation(gaussian):
    # Under H0, E|φ_N(t) - φ(t)|² = (1 - e^{-t²}) / N, so E[T] = ∫ (1 - e^{-t²}) e^{-t²/2} dt ≈ √(2π) - √(2π/3):
    # about 1.06 whatever N is, while any fixed departure grows like N.
    expected = math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3)
    value = float(_sigreg(num_slices=256)(gaussian))
    assert abs(value - expected) < 0.5


@pytest.mark.parametrize("departure", ["collapsed", "shifted", "anisotropic"])
def test_non_gaussian_embeddings_score_far_above_the_null(gaussian, departure):
    embeddings = {
        "collapsed": torch.full((N, D), 0.5),
        "shifted": gaussian + 3.0,
        "anisotropic": gaussian * torch.tensor([5.0] + [1.0] * (D - 1)),
    }[departure]
    sigreg = _sigreg(num_slices=256)
    assert float(sigreg(embeddings)) > 100 * float(sigreg(gaussian))


def _direct_integral(projected: torch.Tensor, t_max: float) -> torch.Tensor:
    """N ∫_{-t_max}^{t_max} |φ_N(t) - e^{-t²/2}|² e^{-t²/2} dt per column, on a dense grid in float64."""
    t = torch.linspace(-t_max, t_max, 4001, dtype=torch.float64)
    phase = projected.double().unsqueeze(-1) * t
    empirical = torch.complex(torch.cos(phase).mean(0), torch.sin(phase).mean(0))
    integrand = (empirical - torch.exp(-t**2 / 2)).abs().square() * torch.exp(-t**2 / 2)
    return projected.shape[0] * torch.trapezoid(integrand, t, dim=-1)


@pytest.mark.parametrize("t_max", [3.0, 5.0])
def test_equals_direct_integration_for_fixed_directions(t_max):
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(512, 8, generator=generator) * 1.3 + 0.2
    directions = torch.randn(8, 5, generator=generator)
    directions = directions / directions.norm(dim=0)
    direct = _direct_integral(embeddings @ directions, t_max)
    per_direction = EppsPulley(knots=17, t_max=t_max)(embeddings @ directions)
    torch.testing.assert_close(per_direction.double(), direct, rtol=2e-3, atol=0)
    fine = _sigreg(knots=1001, t_max=t_max)(embeddings, directions=directions)
    torch.testing.assert_close(fine.double(), direct.mean(), rtol=1e-5, atol=0)
    assert fine.ndim == 0


def test_gradient_is_finite_and_bounded_at_extreme_scale():
    embeddings = (1e4 * torch.randn(256, 32, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    value = _sigreg(num_slices=128)(embeddings)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(embeddings.grad).all()
    # d/dx of cos(t x) and sin(t x) is at most t_max; the statistic's N cancels the 1/N of the mean.
    assert embeddings.grad.abs().max() < 100


def test_directions_are_unit_and_a_function_of_the_step():
    first = random_directions(D, 64, seed=7)
    torch.testing.assert_close(first.norm(dim=0), torch.ones(64))
    assert torch.equal(first, random_directions(D, 64, seed=7))
    assert not torch.equal(first, random_directions(D, 64, seed=8))


def test_rejects_embeddings_that_are_not_a_matrix():
    with pytest.raises(ValueError, match="expects \\(N, D\\)"):
        _sigreg()(torch.randn(4, 3, 2))
