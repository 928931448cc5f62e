"""Objectives: their math (NT-Xent, EMA), that each one learns, and that SIGReg prevents collapse."""

from __future__ import annotations

import math

import pytest
import torch

import registry
from registry import PluginError
from registry.spectrum import effective_rank
from registry.ema import ema_momentum, ema_update
from registry.ntxent import nt_xent


OBJECTIVES = ("lejepa", "ijepa", "ijepa-sigreg", "simclr", "vicreg")
TINY = {
    # The crop aspect-ratio jitter the collapse check of docs/methods.md was measured with.
    "lejepa": {"global_size": 16, "local_size": 8, "local_views": 2, "num_slices": 256, "crop_ratio": (3 / 4, 4 / 3)},
    "ijepa": {"predictor_depth": 1},
    "ijepa-sigreg": {"predictor_depth": 1, "num_slices": 256},
    "simclr": {"global_size": 16},
    "vicreg": {"global_size": 16, "proj_hidden": 256, "proj_dim": 256},
}


def _blobs(n: int, seed: int, size: int = 16) -> torch.Tensor:
    """Standardised images of one noisy Gaussian blob each, of random position and shape."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size) - size / 2 + 0.5, torch.arange(size) - size / 2 + 0.5, indexing="ij")
    centre_x, centre_y = (torch.rand(2, n, 1, 1, generator=generator) * 8 - 4).unbind(0)
    width_x, width_y = (torch.rand(2, n, 1, 1, generator=generator) * 3 + 1).unbind(0)
    images = torch.exp(-((x - centre_x) ** 2 / (2 * width_x**2) + (y - centre_y) ** 2 / (2 * width_y**2)))
    images = (images + 0.1 * torch.randn(n, size, size, generator=generator)).unsqueeze(1)
    return (images - images.mean()) / images.std()


def _objective(name: str, seed: int = 0, depth: int = 1, **options):
    torch.manual_seed(seed)
    encoder = registry.create("encoder", "vit-t", img_size=16, patch_size=4, in_chans=1, depth=depth)
    return registry.create("loss", name, encoder=encoder, **{**TINY[name], **options})


def _train(objective, images: torch.Tensor, steps: int, fixed_draws: bool = False) -> list[float]:
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3, weight_decay=0.0)
    losses = []
    for step in range(steps):
        generator = torch.Generator().manual_seed(0 if fixed_draws else step)
        loss = objective(images, step, generator)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        objective.on_step_end(step, steps)
        losses.append(float(loss.detach()))
    return losses


def test_every_objective_is_registered():
    assert set(OBJECTIVES) | {"sigreg"} <= set(registry.names("loss"))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_reduces_its_loss_on_a_fixed_batch(name):
    losses = _train(_objective(name), _blobs(16, seed=0), steps=50, fixed_draws=True)
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses


def test_ijepa_smooth_l1_prediction_loss_also_learns():
    objective = _objective("ijepa", pred_loss="smooth-l1")
    losses = _train(objective, _blobs(16, seed=0), steps=30, fixed_draws=True)
    assert losses[-1] < 0.9 * losses[0]


def test_objectives_report_their_terms_and_a_probe_embedding():
    images = _blobs(8, seed=0)
    expected = {"lejepa": {"pred", "sigreg", "projection_var"}, "ijepa": {"pred", "target_var"},
                "ijepa-sigreg": {"pred", "sigreg", "target_var"}, "simclr": {"temperature", "retrieval"},
                "vicreg": {"invariance", "variance", "covariance"}}
    for name in OBJECTIVES:
        terms = _objective(name)(images, 0, torch.Generator().manual_seed(0))
        assert set(terms) == {"loss", "embedding"} | expected[name]
        assert terms["loss"].ndim == 0 and terms["embedding"].shape == (8, 192)


def test_ijepa_sees_images_at_the_encoder_size():
    objective = _objective("ijepa", img_size=16)
    seen = []
    for encoder in (objective.encoder, objective.target_encoder):
        encoder.backbone.patch_embed.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape))
    large = torch.nn.functional.interpolate(_blobs(4, seed=0), size=32, mode="bilinear")
    loss = objective(large, 0, torch.Generator().manual_seed(0))["loss"]
    assert seen == [(4, 1, 16, 16)] * 2 and torch.isfinite(loss)


def test_ijepa_needs_a_vit():
    encoder = registry.create("encoder", "resnet18", in_chans=1)
    with pytest.raises(PluginError, match="needs a ViT encoder"):
        registry.create("loss", "ijepa", encoder=encoder)


def test_ntxent_matches_a_hand_computed_three_image_example():
    # Views a = b = (e1, e2, -e1). With τ = 1/2 the logits are 2·cos: for the anchors e1 and -e1 the
    # other five views give cosines (0, -1, +1, 0, -1) with the +1 the positive; for e2 they give
    # (0, 0, 0, +1, 0). Each anchor's loss is -log(e^{2·1} / Σ_k e^{2·s_k}).
    views = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    e2 = math.exp(2)
    loss_e1 = -2 + math.log(e2 + 2 + 2 * math.exp(-2))
    loss_e2 = -2 + math.log(e2 + 4)
    expected = (2 * loss_e1 + loss_e2) / 3
    assert float(nt_xent(views, views * 3.0, 0.5)) == pytest.approx(expected, rel=1e-6)


def test_simclr_temperature_starts_at_0_07_and_is_learnt():
    objective = _objective("simclr")
    assert float(objective.log_temperature.detach().exp()) == pytest.approx(0.07)
    objective(_blobs(8, seed=0), 0, torch.Generator().manual_seed(0))["loss"].backward()
    assert objective.log_temperature.grad is not None and objective.log_temperature.grad != 0


def test_ema_schedule_is_linear_from_0_996_to_1():
    assert ema_momentum(0, 100) == pytest.approx(0.996)
    assert ema_momentum(50, 100) == pytest.approx(0.998)
    assert ema_momentum(100, 100) == pytest.approx(1.0)
    assert ema_momentum(150, 100) == pytest.approx(1.0)


def test_ema_update_and_ijepa_target_follow_the_formula():
    target, online = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for new, old, theta in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(new.detach(), 0.9 * old + 0.1 * theta.detach())

    objective = _objective("ijepa")
    assert not any(p.requires_grad for p in objective.target_encoder.parameters())
    assert any(k.startswith("target_encoder.") for k in objective.state_dict())
    target_before = [p.clone() for p in objective.target_encoder.parameters()]
    _train(objective, _blobs(8, seed=0), steps=1)  # one optimiser step, then on_step_end(0, 1): m = 0.996
    for new, old, theta in zip(objective.target_encoder.parameters(), target_before, objective.encoder.parameters()):
        torch.testing.assert_close(new, 0.996 * old + 0.004 * theta.detach())


def _collapse_stats(objective, steps: int = 60) -> tuple[float, float]:
    """Mean per-dimension std and effective rank of the encoder's embeddings of held-out images."""
    _train(objective, _blobs(32, seed=0), steps)
    objective.encoder.eval()
    with torch.no_grad():
        embeddings = objective.encoder(_blobs(64, seed=1))
    return float(embeddings.std(0).mean()), effective_rank(embeddings)


def test_ijepa_without_ema_loses_rank_and_sigreg_prevents_it():
    # SIGReg acts on a projection of the pooled context tokens, so it keeps the embedding's rank
    # (docs/methods.md: 4.3 without it, 9.1 with it) rather than pinning its scale.
    _, collapsed_rank = _collapse_stats(_objective("ijepa-sigreg", lam=0.0, ema=0.0))
    _, healthy_rank = _collapse_stats(_objective("ijepa-sigreg", lam=0.5, ema=0.0))
    assert collapsed_rank < 0.6 * healthy_rank, (collapsed_rank, healthy_rank)


def test_lejepa_without_sigreg_loses_rank():
    _, collapsed_rank = _collapse_stats(_objective("lejepa", lam=0.0))
    _, healthy_rank = _collapse_stats(_objective("lejepa", lam=0.5))
    assert collapsed_rank < 0.6 * healthy_rank, (collapsed_rank, healthy_rank)


def test_lejepa_trains_under_bf16_autocast():
    """Mixed precision (bf16 autocast, as on CUDA) keeps the projector's BatchNorm statistics in float32."""
    encoder = registry.create("encoder", "vit-t", img_size=16, patch_size=8, in_chans=1, depth=1)
    objective = registry.create("loss", "lejepa", encoder=encoder, global_size=16, local_size=8, local_views=2)
    images = torch.randn(8, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = objective(images, 0, torch.Generator().manual_seed(0))
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert objective.projector[1].running_mean.dtype == torch.float32
