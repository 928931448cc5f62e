"""End of an epoch: collapse monitors on the training images, the online probe's held-out accuracy, and how
easily the objective's task is solved on a fixed batch (:mod:`.shortcut_monitor`)."""

from __future__ import annotations

import torch

from astrojepa_cli.data import loader
from astrojepa_cli.train.monitors import collapse_monitors
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.shortcut_monitor import shortcut_monitors, shortcut_warning
from astrojepa_cli.train.training_data import TrainingData
from registry.objective import Objective
from registry.views import centre_view

MONITOR_IMAGES = 512
COLLAPSE_RANK = 2.0


@torch.no_grad()
def embed(encoder: torch.nn.Module, images: loader.DeviceImages, img_size: int,
          indices: torch.Tensor | None = None) -> torch.Tensor:
    """Embeddings of the centre views of ``images`` (rows ``indices``, default all), in eval mode."""
    was_training = encoder.training
    encoder.eval()
    indices = torch.arange(len(images), device=images.device) if indices is None else indices.to(images.device)
    embeddings = torch.cat([encoder(centre_view(images.batch(chunk), img_size)).float() for chunk in indices.split(256)])
    encoder.train(was_training)
    return embeddings


def epoch_monitors(objective: Objective, data: TrainingData, probe: OnlineProbe, img_size: int,
                   rank: int = 0, world_size: int = 1, seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """Collapse monitors of the first :data:`MONITOR_IMAGES` training images, the shortcut monitors of
    ``objective`` on the first ``batch_size`` of them (views seeded by ``seed``) and, with held-out labels,
    the online probe's accuracy.

    Under DDP each rank takes its share (``rank``, ``world_size``) of the monitor
    images, so SIGReg (which all-reduces) counts every image once.
    """
    monitor_rows = torch.arange(min(MONITOR_IMAGES, len(data.images)))[rank::world_size]
    monitors = collapse_monitors(embed(objective.encoder, data.images, img_size, monitor_rows))
    batch = min(batch_size, len(data.images))
    monitors |= shortcut_monitors(objective, data.images, torch.arange(batch)[rank::world_size], batch, seed)
    if data.held_out is not None:
        monitors["online_probe_accuracy"] = probe.accuracy(embed(objective.encoder, data.held_out, img_size),
                                                           data.held_out_labels)
    return monitors


def epoch_warnings(epochs: list[dict], config) -> list[str]:
    """The warning lines of the latest epoch summary of ``epochs``: collapse, and (once a run) a solved task."""
    return [line for line in (collapse_warning(epochs[-1]), shortcut_warning(epochs, config)) if line]


def collapse_warning(summary: dict) -> str | None:
    """A warning line when the epoch's embeddings look collapsed (effective rank below :data:`COLLAPSE_RANK`)."""
    if summary["effective_rank"] >= COLLAPSE_RANK:
        return None
    return (f"epoch {summary['epoch']}: effective rank {summary['effective_rank']:.2f} < {COLLAPSE_RANK}; "
            "the embeddings may be collapsing")
