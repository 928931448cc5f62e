"""ResNet-18 for small cutouts, as timm models: a 3×3 stem and no max-pool, at several widths and stem strides.

timm's ResNet-18 divides its input by 4 before the first residual stage (a 7×7
stride-2 convolution, then a stride-2 max-pool), so a 32 px cutout reaches the
last stage as a single pixel. The CIFAR variant of He et al. (2016, §4.2), which
SimCLR (Chen et al. 2020, appendix B.9) also uses for 32 px images, keeps the full
resolution into the first stage instead. Widths ``w, 2w, 4w, 8w`` with ``w`` = 16
or 32 trade width for epochs on a CPU budget; ``w`` = 64 is the CIFAR ResNet-18.
``resnet18_small_s2`` keeps the full widths but gives the 3×3 stem stride 2: a
32 px cutout reaches the last stage as 2×2 pixels, at about a quarter of the
stride-1 network's cost.

Registering them with timm's ``register_model`` lets ``timm.create_model`` rebuild
them from a run's saved spec once this module is imported (``registry.encoders``
does that).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet

from registry import PluginError

STAGE_BLOCKS = (2, 2, 2, 2)


def small_input_resnet18(width: int, in_chans: int = 3, stem_stride: int = 1, **kwargs: Any) -> ResNet:
    """timm's ResNet-18 with stage widths ``width`` × (1, 2, 4, 8), a 3×3 64-channel stem of ``stem_stride``,
    no max-pool."""
    for timm_only in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(timm_only, None)
    model = ResNet(block=BasicBlock, layers=STAGE_BLOCKS, channels=tuple(width * m for m in (1, 2, 4, 8)),
                   in_chans=in_chans, **kwargs)
    # timm's plain stem always has 64 channels (its first stage takes 64); only its stride changes here.
    model.conv1 = nn.Conv2d(in_chans, model.conv1.out_channels, kernel_size=3, stride=stem_stride, padding=1,
                            bias=False)
    model.maxpool = nn.Identity()
    return model


def _no_pretrained(pretrained: bool, name: str) -> None:
    if pretrained:
        raise PluginError(f"{name} has no pretrained weights")


@register_model
def resnet18_small_w16(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Small-input ResNet-18 of width 16 (16–128 channels, 128-d embedding)."""
    _no_pretrained(pretrained, "resnet18_small_w16")
    return small_input_resnet18(16, **kwargs)


@register_model
def resnet18_small_w32(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Small-input ResNet-18 of width 32 (32–256 channels, 256-d embedding)."""
    _no_pretrained(pretrained, "resnet18_small_w32")
    return small_input_resnet18(32, **kwargs)


@register_model
def resnet18_small_w64(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Small-input ResNet-18 of width 64, the CIFAR ResNet-18 (64–512 channels, 512-d embedding)."""
    _no_pretrained(pretrained, "resnet18_small_w64")
    return small_input_resnet18(64, **kwargs)


@register_model
def resnet18_small_s2(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """Small-input ResNet-18 of full width (64–512 channels, 512-d embedding) with a 3×3 stride-2 stem."""
    _no_pretrained(pretrained, "resnet18_small_s2")
    return small_input_resnet18(64, stem_stride=2, **kwargs)
