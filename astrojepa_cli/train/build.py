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


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only; none on biases, norms and tokens."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay, "decayed": True},
            {"params": no_decay, "weight_decay": 0.0, "decayed": False}]


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast when ``precision`` asks for it (``auto``: on CUDA); otherwise nothing."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
