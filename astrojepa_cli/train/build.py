"""What a training process builds before its first step, besides the objective itself:
the device layout, the optimiser and the mixed-precision context."""

from __future__ import annotations

import contextlib

import torch

from astrojepa_cli.train.config import PretrainConfig
from registry.objective import Objective


def to_training_layout(objective: Objective, device: torch.device) -> Objective:
    """Move ``objective`` to ``device``, with a convolutional encoder in channels-last layout on CPU and CUDA.

    oneDNN (CPU) and cuDNN (CUDA tensor cores) run convolutions fastest on NHWC
    tensors; a ViT is matmuls after its patch embedding and keeps the default layout.
    """
    objective = objective.to(device)
    encoder = objective.encoder
    convolutional = any(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
    if convolutional and not getattr(encoder, "is_vit", False) and device.type in ("cpu", "cuda"):
        objective = objective.to(memory_format=torch.channels_last)
    return objective


def build_optimizer(objective: Objective, config: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``objective``, fused into one kernel per step on CPU and CUDA."""
    return torch.optim.AdamW(_param_groups(objective, config.weight_decay), lr=config.lr,
                             fused=device.type in ("cpu", "cuda"))


# Learnt tokens and embeddings (ViT class/register tokens, positional embeddings, I-JEPA's mask token) are
# inputs the network adds, not weights that scale activations: as in timm's ``no_weight_decay`` and the
# official I-JEPA code, they are not decayed, though they are matrices.
NO_DECAY_NAMES = ("pos_embed", "cls_token", "reg_token", "dist_token", "mask_token")


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only; none on biases, norms and tokens."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            is_token = name.rsplit(".", 1)[-1] in NO_DECAY_NAMES
            (decay if parameter.ndim >= 2 and not is_token else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay, "decayed": True},
            {"params": no_decay, "weight_decay": 0.0, "decayed": False}]


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast when ``precision`` is bf16; otherwise nothing.

    The loop passes the run's resolved choice (:mod:`.precision`: ``bf16`` or ``fp32``);
    a bare ``auto`` (as the reference loop of ``benchmarks/throughput.py`` passes it) means
    bf16 on CUDA and fp32 elsewhere."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
