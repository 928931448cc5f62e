"""Built-in encoders, all built by timm.

Every encoder maps (N, C, H, W) images with any channel count to a global
embedding (N, D). ViTs also expose patch tokens (:meth:`Encoder.forward_tokens`),
optionally keeping only a subset of patches, which I-JEPA's context encoder needs.

The timm architecture name and its keyword arguments travel with the weights
(see :attr:`Encoder.timm_spec`), so ``timm.create_model(**spec)`` can rebuild the
network. ``resnet15_gn`` and the small-input ResNet-18s are registered with timm by
:mod:`registry.resnet15` and :mod:`registry.small_resnet`, which this module
imports (importing it is what makes them buildable); every other architecture is stock timm.

The ResNets are built with ``zero_init_last=False``. timm's default zeroes the last
norm of every residual branch, so at initialisation a ResNet is its stem and its
1×1 stride-2 shortcuts alone; each shortcut keeps one pixel in four, and at 32 px
timm's ResNet-18 embedding then depends on a 6×6 corner of the image
(``benchmarks/receptive_field.py``). Training starts from that corner, and the
anomaly rankings and probes of short runs follow it.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from registry import PluginError, register, resnet15, small_resnet

# Every residual branch starts live (see the module docstring); kept in the timm spec, so the rebuilt
# network is the one that trained. A spec saved without it rebuilds timm's default, and the weights it
# loads make the initialisation irrelevant.
RESNET_INIT = {"zero_init_last": False}


class Encoder(nn.Module):
    """A timm backbone with a global embedding and, for ViTs, patch tokens."""

    def __init__(self, timm_name: str, **timm_kwargs) -> None:
        super().__init__()
        self.timm_spec = {"model_name": timm_name, **timm_kwargs}
        # The image size it is trained and evaluated at; set by ``pretrain`` and kept in the encoder file.
        self.input_size: int | None = timm_kwargs.get("img_size")
        self.backbone = timm.create_model(timm_name, pretrained=False, num_classes=0, **timm_kwargs)
        self.embed_dim = int(self.backbone.num_features)
        self.in_chans = int(timm_kwargs.get("in_chans", 3))
        patch_embed = getattr(self.backbone, "patch_embed", None)
        self.patch_size = int(patch_embed.patch_size[0]) if patch_embed is not None else None

    @property
    def is_vit(self) -> bool:
        return self.patch_size is not None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Global embedding (N, D): mean-pooled tokens for ViTs, pooled features for CNNs."""
        return self.backbone(images)

    def forward_tokens(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """ViT patch tokens (N, L, D) after the final norm; ``keep`` (N, K) selects patch indices.

        Positional embeddings are added before the selection, so kept tokens
        remember where they came from.
        """
        if not self.is_vit:
            raise TypeError(f"{self.timm_spec['model_name']} has no patch tokens; use a ViT encoder")
        vit = self.backbone
        tokens = vit._pos_embed(vit.patch_embed(images))
        if keep is not None:
            tokens = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        tokens = vit.blocks(vit.norm_pre(tokens))
        return vit.norm(tokens)


# name: (timm architecture, one-line description); each is registered by :func:`_vit_plugin`.
VITS = {
    "vit-t": ("vit_tiny_patch16_224", "ViT-Tiny (192-d, 12 blocks, 3 heads)"),
    "vit-s": ("vit_small_patch16_224", "ViT-Small (384-d, 12 blocks, 6 heads)"),
    "vit-b": ("vit_base_patch16_224", "ViT-Base (768-d, 12 blocks, 12 heads)"),
}


def _vit_plugin(timm_name: str, summary: str):
    """The factory of a mean-pooled ViT without class token, at any image size and channel count."""

    def factory(img_size: int = 64, patch_size: int = 8, in_chans: int = 3, drop_path_rate: float = 0.0,
                depth: int | None = None) -> Encoder:
        overrides = {} if depth is None else {"depth": depth}
        return Encoder(timm_name, **overrides, img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                       class_token=False, global_pool="avg", fc_norm=False, dynamic_img_size=True,
                       drop_path_rate=drop_path_rate)

    factory.__doc__ = f"{summary}, mean-pooled; any image size and channel count."
    return factory


for _name, (_timm_name, _summary) in VITS.items():
    register("encoder", _name)(_vit_plugin(_timm_name, _summary))


@register("encoder", "resnet18")
def resnet18(in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
    """ResNet-18 (He et al. 2016), BatchNorm, 512-d average-pooled embedding; any channel count."""
    return Encoder("resnet18", in_chans=in_chans, drop_path_rate=drop_path_rate, **RESNET_INIT)


@register("encoder", "resnet34")
def resnet34(in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
    """ResNet-34 (He et al. 2016), BatchNorm, 512-d average-pooled embedding; any channel count."""
    return Encoder("resnet34", in_chans=in_chans, drop_path_rate=drop_path_rate, **RESNET_INIT)


@register("encoder", "resnet50")
def resnet50(in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
    """ResNet-50 (He et al. 2016), bottleneck blocks, 2048-d average-pooled embedding; any channel count."""
    return Encoder("resnet50", in_chans=in_chans, drop_path_rate=drop_path_rate, **RESNET_INIT)


@register("encoder", "resnet15-gn")
def resnet15_gn(in_chans: int = 3, drop_rate: float = 0.2, num_groups: int = 32) -> Encoder:
    """ResNet-15 of the jet-image seed: GroupNorm, dropout, widening 64 to 512; 512-d embedding."""
    return Encoder(resnet15.resnet15_gn.__name__, in_chans=in_chans, drop_rate=drop_rate, num_groups=num_groups,
                   **RESNET_INIT)


@register("encoder", "convnextv2-nano")
def convnextv2_nano(img_size: int = 64, in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
    """ConvNeXt-V2-Nano (Woo et al. 2023), 640-d embedding; needs images of at least 32 px."""
    if img_size < 32:
        raise PluginError(f"convnextv2-nano downsamples by 32 and needs --img-size >= 32, got {img_size}")
    return Encoder("convnextv2_nano", in_chans=in_chans, drop_path_rate=drop_path_rate)


def _small_resnet18(width: int, stem_stride: int, timm_model):
    def factory(in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
        return Encoder(timm_model.__name__, in_chans=in_chans, drop_path_rate=drop_path_rate, **RESNET_INIT)

    factory.__doc__ = (f"ResNet-18 for small cutouts: 3×3 stride-{stem_stride} stem, no max-pool, widths "
                       f"{width}–{8 * width} ({8 * width}-d embedding).")
    return factory


# name: (stage width, stem stride, timm model registered by registry.small_resnet) of the small-input ResNet-18s.
SMALL_RESNET18 = {"resnet18-w16": (16, 1, small_resnet.resnet18_small_w16),
                  "resnet18-w32": (32, 1, small_resnet.resnet18_small_w32),
                  "resnet18-w64": (64, 1, small_resnet.resnet18_small_w64),
                  "resnet18-s2": (64, 2, small_resnet.resnet18_small_s2)}
for _name, (_width, _stride, _timm_model) in SMALL_RESNET18.items():
    register("encoder", _name)(_small_resnet18(_width, _stride, _timm_model))


@register("encoder", "convnext-atto")
def convnext_atto(img_size: int = 64, in_chans: int = 3, drop_path_rate: float = 0.0) -> Encoder:
    """ConvNeXt-Atto (timm; 3.4M parameters), 320-d embedding; needs images of at least 32 px."""
    if img_size < 32:
        raise PluginError(f"convnext-atto downsamples by 32 and needs --img-size >= 32, got {img_size}")
    return Encoder("convnext_atto", in_chans=in_chans, drop_path_rate=drop_path_rate)
