"""ResNet-15 with GroupNorm, the encoder of the jet-image self-supervised seed, as a timm model.

The network is timm's ``ResNet`` with a 7×7 stem convolution and seven basic
residual blocks (two 3×3 convolutions each) in four stages that widen
64 → 128 → 256 → 512 channels: 1 + 7·2 = 15 weighted convolutions. GroupNorm
(Wu & He 2018, arXiv 1803.08494) replaces BatchNorm so the statistics never mix
samples, and dropout acts on the pooled 512-d embedding during training.

Registering it with timm's ``register_model`` lets ``timm.create_model("resnet15_gn", ...)``
rebuild it from a run's saved spec once this module is imported (importing
``registry.encoders`` does that).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from timm.layers import GroupNorm
from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet

from registry import PluginError

STAGE_BLOCKS = (2, 2, 2, 1)
STAGE_WIDTHS = (64, 128, 256, 512)


@register_model
def resnet15_gn(pretrained: bool = False, num_groups: int = 32, drop_rate: float = 0.2, **kwargs: Any) -> ResNet:
    """ResNet-15 (stages of 2, 2, 2, 1 basic blocks, widths 64–512) with GroupNorm and dropout."""
    if pretrained:
        raise PluginError("resnet15_gn has no pretrained weights")
    for timm_only in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(timm_only, None)
    return ResNet(
        block=BasicBlock,
        layers=STAGE_BLOCKS,
        channels=STAGE_WIDTHS,
        norm_layer=partial(GroupNorm, num_groups=num_groups),
        drop_rate=drop_rate,
        **kwargs,
    )
