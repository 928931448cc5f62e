"""The interface every training objective (a ``loss`` plugin used by ``pretrain``) implements,
and how the objective a config names is built from its plugins."""

from __future__ import annotations

import torch
from torch import nn

import registry
from registry import PluginError
from registry.objective_config import ObjectiveConfig
from registry.photometry import extinction_coefficients
from registry.views import Augment


class Objective(nn.Module):
    """A self-supervised objective that owns the encoder and any heads it trains.

    ``forward(images, step, generator)`` takes a normalised (N, C, H, W) batch on
    the training device and returns a dict with the scalar ``loss`` and each of
    its terms (detached or not; the loop only logs them). ``generator`` is the
    per-step random generator for views and masks, so a resumed run draws the
    same augmentations as an uninterrupted one.

    The returned dict may also carry ``embedding``: detached (N, D) encoder
    embeddings of one view of the batch, which the loop's online probe uses.

    ``shard = (rank, world_size)`` is set by the training loop under DDP; pass
    it to :func:`registry.views.random_views` so every rank draws its part of
    the global batch's augmentations.
    """

    encoder: nn.Module
    shard: tuple[int, int] = (0, 1)

    def forward(self, images: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (e.g. an EMA update); nothing by default."""


def build_objective(config: ObjectiveConfig, channels: int, img_size: int) -> Objective:
    """The encoder, masker and loss plugins named by ``config``, sized for ``channels``-channel ``img_size`` images.

    The engine offers each plugin the same context (sizes, the encoder, the view
    options); each is built with the offered options its factory takes, and an
    option left unset (None) keeps the factory's default. A user's option that
    the loss does not take is refused earlier, where the config is checked.
    """
    encoder = build_encoder(config.arch, channels, img_size, config.patch_size)
    patch = getattr(encoder, "patch_size", None) or 1
    local_size = config.local_size or max(patch * 2, (img_size // 2) // patch * patch)
    masker = registry.create("masker", config.masker) if config.masker else None
    extinction = config.extinction_coefficients
    if config.reddening > 0:
        try:
            extinction = extinction_coefficients(extinction, channels)
        except ValueError as exc:
            raise PluginError(str(exc)) from None
    augment = Augment(rotation=config.rotation, translate=config.translate, blur_sigma=config.blur,
                      flux_scale=config.flux_scale, reddening=config.reddening, extinction=extinction,
                      band_gain=config.band_gain, drop_bands=config.drop_bands, noise_std=config.view_noise)
    try:
        objective = _build(
            "loss", config.loss, encoder=encoder, lam=config.lam, global_views=config.global_views,
            local_views=config.local_views, global_size=config.global_size or img_size, local_size=local_size,
            global_scale=config.global_scale, local_scale=config.local_scale, augment=augment,
            crop_ratio=config.crop_ratio,
            proj_dim=config.proj_dim, proj_hidden=config.proj_hidden, proj_depth=config.proj_depth,
            temperature=config.temperature, masker=masker, ema=config.ema, img_size=img_size,
            pred_loss=config.pred_loss,
        )
    except (ValueError, TypeError) as exc:
        raise PluginError(f"cannot build loss '{config.loss}' with encoder '{config.arch}': {exc}") from None
    if not isinstance(objective, Objective):
        trainable = [name for name in registry.names("loss") if registry.get("loss", name).takes("encoder")]
        raise PluginError(f"loss '{config.loss}' is a regulariser, not a training objective; "
                          f"use one of {', '.join(trainable)}")
    return objective


def build_encoder(arch: str, channels: int, img_size: int, patch_size: int) -> nn.Module:
    """Encoder plugin ``arch`` for ``channels``-channel ``img_size`` images (``patch_size`` if it has patches)."""
    encoder = _build("encoder", arch, img_size=img_size, patch_size=patch_size, in_chans=channels)
    encoder.input_size = img_size
    return encoder


def _build(kind: str, name: str, **offered):
    """Plugin ``name`` of ``kind`` built with the set options of ``offered`` that its factory takes."""
    plugin = registry.get(kind, name)
    return registry.create(kind, name, **{k: v for k, v in offered.items() if v is not None and plugin.takes(k)})
