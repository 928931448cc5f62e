"""LeJEPA, I-JEPA and the hybrid as their official code has them: views, positional embedding,
weight decay, the hybrid's SIGReg input, ``--ema 0``; and an I-JEPA checkpoint resumes exactly."""

from __future__ import annotations

import pytest
import torch
from timm.layers import build_sincos2d_pos_embed

import registry
from astrojepa_cli.train.build import build_optimizer
from astrojepa_cli.train.checkpoint import load_checkpoint, save_checkpoint
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.presets import PRESETS
from registry.objective import build_objective

CPU = torch.device("cpu")


def _vit(depth: int = 1):
    return registry.create("encoder", "vit-t", img_size=16, patch_size=4, in_chans=1, depth=depth)


def _ijepa(name: str = "ijepa", **options):
    torch.manual_seed(0)
    extra = {"num_slices": 64, "proj_hidden": 64, "proj_dim": 16} if name == "ijepa-sigreg" else {}
    return registry.create("loss", name, encoder=_vit(), predictor_depth=1, **{**extra, **options})


def _images(n: int = 8) -> torch.Tensor:
    return torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(3))


def _step(objective, optimizer, images, step: int, total: int) -> None:
    objective(images, step, torch.Generator().manual_seed(step))["loss"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    objective.on_step_end(step, total)


# --- LeJEPA ---------------------------------------------------------------------------------------


def test_lejepa_gives_cnns_global_views_only_and_vits_six_local_views():
    cnn = registry.create("loss", "lejepa", encoder=registry.create("encoder", "resnet18-w16", in_chans=1))
    vit = registry.create("loss", "lejepa", encoder=_vit())
    asked = registry.create("loss", "lejepa", encoder=registry.create("encoder", "resnet18", in_chans=1),
                            local_views=2)
    assert [spec.count for spec in cnn.view_specs] == [2]
    assert [spec.count for spec in vit.view_specs] == [2, 6]
    assert [spec.count for spec in asked.view_specs] == [2, 2]  # an explicit count is kept


def test_lejepa_projector_is_the_official_2048_wide_mlp():
    objective = registry.create("loss", "lejepa", encoder=_vit())
    widths = [layer.out_features for layer in objective.projector if isinstance(layer, torch.nn.Linear)]
    assert widths == [2048, 2048, 128]


def test_lejepa_cpu_preset_uses_global_views_only():
    preset = PRESETS["lejepa-cpu"]
    config = PretrainConfig(**{k: v for k, v in preset.items() if k != "budget"})
    objective = build_objective(config, 1, preset["img_size"])
    assert len(objective.view_specs) == 1 and objective.view_specs[0].count == preset["global_views"]


def test_a_lejepa_run_recorded_before_the_2048_projector_rebuilds_its_512_wide_one():
    recorded = {k: v for k, v in PretrainConfig(arch="resnet18-w16", loss="lejepa").to_json().items()
                if k != "crop_ratio"}  # what a manifest of that time holds: proj_hidden null
    for values, width in ((recorded, 512), ({**recorded, "crop_ratio": None}, 2048)):
        objective = build_objective(PretrainConfig.from_json(values), 1, 16)
        assert objective.projector[0].out_features == width


@pytest.mark.parametrize("arch, loss, given, expected", [
    ("resnet18", "lejepa", None, (5e-4, 5e-4)),
    ("resnet18-w16", "lejepa", None, (5e-4, 5e-4)),
    ("vit-t", "lejepa", None, (0.05, 0.05)),
    ("resnet18", "simclr", None, (0.05, 0.05)),
    ("vit-t", "ijepa", None, (0.04, 0.4)),
    ("resnet18", "lejepa", 0.01, (0.01, 0.01)),
])
def test_weight_decay_default_follows_method_and_encoder(arch, loss, given, expected):
    config = PretrainConfig(arch=arch, loss=loss, weight_decay=given).with_method_defaults()
    assert (config.weight_decay, config.weight_decay_end) == expected


# --- I-JEPA -----------------------------------------------------------------------------------------


def test_ijepa_draws_a_random_resized_crop_each_step():
    objective = _ijepa(global_scale=(0.3, 0.6))
    seen = []
    objective.target_encoder.backbone.patch_embed.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    images = _images()
    with torch.no_grad():
        for step in (0, 1, 0):
            objective(images, step, torch.Generator().manual_seed(step))
    assert seen[0].shape == images.shape
    assert not torch.allclose(seen[0], seen[1]) and not torch.allclose(seen[0], images)
    assert torch.equal(seen[0], seen[2])  # the step's generator fixes the crop, so a resume redraws it


@pytest.mark.parametrize("name", ["ijepa", "ijepa-sigreg"])
def test_ijepa_positional_embedding_is_fixed_sincos_and_tokens_are_not_decayed(name):
    objective = _ijepa(name)
    pos_embed = objective.encoder.backbone.pos_embed
    assert not pos_embed.requires_grad
    torch.testing.assert_close(pos_embed[0], build_sincos2d_pos_embed([4, 4], pos_embed.shape[-1]))
    config = PretrainConfig(arch="vit-t", loss=name).with_method_defaults()
    optimizer = build_optimizer(objective, config, CPU)
    decayed = {id(p) for group in optimizer.param_groups if group["decayed"] for p in group["params"]}
    undecayed = {id(p) for group in optimizer.param_groups if not group["decayed"] for p in group["params"]}
    assert id(objective.predictor.mask_token) in undecayed and id(pos_embed) not in decayed | undecayed
    before = pos_embed.detach().clone()
    for step in range(2):
        _step(objective, optimizer, _images(), step, 2)
    assert torch.equal(pos_embed, before) and torch.equal(objective.target_encoder.backbone.pos_embed, before)


def test_a_learnt_positional_embedding_is_not_decayed():
    objective = registry.create("loss", "lejepa", encoder=_vit(), global_size=16, proj_hidden=64)
    optimizer = build_optimizer(objective, PretrainConfig(arch="vit-t").with_method_defaults(), CPU)
    undecayed = {id(p) for group in optimizer.param_groups if not group["decayed"] for p in group["params"]}
    assert objective.encoder.backbone.pos_embed.requires_grad and id(objective.encoder.backbone.pos_embed) in undecayed


def test_hybrid_sigreg_sees_a_projection_with_variance_in_every_direction():
    objective = _ijepa("ijepa-sigreg")
    seen = []
    objective.sigreg.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    objective(torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(4)), 0,
              torch.Generator().manual_seed(0))
    regularised = seen[0].detach().double()
    eigenvalues = torch.linalg.eigvalsh(torch.cov(regularised.T))
    assert regularised.shape == (64, 16) and eigenvalues.min() > 1e-3 * eigenvalues.max()


def test_ema_zero_means_no_ema_the_target_is_the_encoder():
    objective = _ijepa("ijepa-sigreg", ema=0.0, lam=0.5)
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
    for step in range(3):
        _step(objective, optimizer, _images(), step, 3)
        for target, online in zip(objective.target_encoder.parameters(), objective.encoder.parameters()):
            assert torch.equal(target, online)
    ramped = _ijepa("ijepa", ema=0.5)
    assert (ramped.ema_start, ramped.ema_end) == (0.5, 1.0)


def test_ijepa_sigreg_resumes_exactly_from_a_checkpoint(tmp_path):
    config = PretrainConfig(arch="vit-t", loss="ijepa-sigreg", patch_size=4, img_size=16, proj_hidden=64,
                            proj_dim=16).with_method_defaults()
    images = _images()

    def fresh():
        torch.manual_seed(0)
        objective = build_objective(config, 1, 16)
        return objective, build_optimizer(objective, config, CPU)

    uninterrupted, uninterrupted_optimizer = fresh()
    for step in range(2):
        _step(uninterrupted, uninterrupted_optimizer, images, step, 4)
    save_checkpoint(tmp_path, {"objective": uninterrupted}, {"objective": uninterrupted_optimizer}, 2, {})
    resumed, resumed_optimizer = fresh()
    load_checkpoint(tmp_path, {"objective": resumed}, {"objective": resumed_optimizer}, CPU)
    for step in (2, 3):
        _step(uninterrupted, uninterrupted_optimizer, images, step, 4)
        _step(resumed, resumed_optimizer, images, step, 4)
    for (name, expected), actual in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(actual, expected), name
