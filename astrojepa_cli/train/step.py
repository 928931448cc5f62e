"""One training step, and the randomness and schedule it draws from its step number.

Randomness is a function of the step: the epoch order is drawn from a generator
seeded by (seed, epoch), and views, masks and any dropout from generators seeded
by (seed, step). A resumed run therefore replays exactly the batches and
augmentations an uninterrupted run would have drawn.
"""

from __future__ import annotations

import torch

from astrojepa_cli.data import loader
from astrojepa_cli.train.build import autocast_for
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.distributed import Placement
from astrojepa_cli.train.schedules import cosine_ramp, warmup_cosine
from registry.objective import Objective


def step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator of step ``step``'s views and masks."""
    return torch.Generator(device=device).manual_seed(step_seed(seed, step))


def epoch_order(images: loader.DeviceImages, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's shuffle (window-keeping when the store is read in chunks), seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(step_seed(seed, 10_000_000 + epoch))
    return images.shuffled_order(generator).to(images.device)


def rank_batch(order: torch.Tensor, position: int, global_batch: int, placement: Placement) -> torch.Tensor:
    """This rank's share of the ``position``-th global batch of the epoch ``order``."""
    return order[position * global_batch : (position + 1) * global_batch][placement.rank :: placement.world_size]


def set_schedule(optimizer: torch.optim.Optimizer, config: PretrainConfig, step: int, total_steps: int,
                 warmup_steps: int) -> tuple[float, float]:
    """Set the learning rate and weight decay of ``step`` (warm-up then cosine; a cosine ramp); return both."""
    lr = warmup_cosine(step, total_steps, warmup_steps, config.lr, config.lr / 1000)
    weight_decay = cosine_ramp(step, total_steps, config.weight_decay, config.weight_decay_end)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["decayed"]:
            group["weight_decay"] = weight_decay
    return lr, weight_decay


def forward(model: torch.nn.Module, images: torch.Tensor, step: int, generator: torch.Generator,
            precision: str) -> dict[str, torch.Tensor]:
    """The objective's loss and terms on one batch (``model`` may wrap it in DDP or torch.compile)."""
    with autocast_for(images.device, precision):
        return model(images, step, generator)


def update(loss: torch.Tensor, objective: Objective, optimizer: torch.optim.Optimizer, step: int,
           total_steps: int) -> None:
    """Backward, one optimiser step, then the objective's own end of step (e.g. an EMA update)."""
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    objective.on_step_end(step, total_steps)
