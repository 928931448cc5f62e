"""End of an epoch: collapse monitors on the training images and the online probe's held-out accuracy."""

from __future__ import annotations

import torch

from astrojepa_cli.data import loader
from astrojepa_cli.train.monitors import collapse_monitors
from astrojepa_cli.train.online_probe import OnlineProbe
from astrojepa_cli.train.training_data import TrainingData
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


def epoch_monitors(encoder: torch.nn.Module, data: TrainingData, probe: OnlineProbe, img_size: int,
                   rank: int = 0, world_size: int = 1) -> dict[str, float]:
    """Collapse monitors of the first :data:`MONITOR_IMAGES` training images and, with held-out labels,
    the online probe's accuracy on them.

    Under DDP each rank embeds its share (``rank``, ``world_size``) of the monitor
    images, so SIGReg (which all-reduces) counts every image once.
    """
    monitor_rows = torch.arange(min(MONITOR_IMAGES, len(data.images)))[rank::world_size]
    monitors = collapse_monitors(embed(encoder, data.images, img_size, monitor_rows))
    if data.held_out is not None:
        monitors["online_probe_accuracy"] = probe.accuracy(embed(encoder, data.held_out, img_size),
                                                           data.held_out_labels)
    return monitors


def collapse_warning(summary: dict) -> str | None:
    """A warning line when the epoch's embeddings look collapsed (effective rank below :data:`COLLAPSE_RANK`)."""
    if summary["effective_rank"] >= COLLAPSE_RANK:
        return None
    return (f"epoch {summary['epoch']}: effective rank {summary['effective_rank']:.2f} < {COLLAPSE_RANK}; "
            "the embeddings may be collapsing")
