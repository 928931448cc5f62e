"""Batch normalisation whose batch statistics span every DDP rank.

``torch.nn.SyncBatchNorm`` only runs on accelerators; this one also runs on the
CPU with the gloo backend, so a 2-process CPU job computes exactly what one
process computes on the concatenated batch.
"""

from __future__ import annotations

import torch
from torch import nn

from registry.collectives import world_mean, world_size


class GlobalBatchNorm1d(nn.BatchNorm1d):
    r"""BatchNorm1d with mean and variance over the global batch (equal shard sizes assumed).

    .. math:: \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}\,\gamma + \beta,
              \quad \mu_B = \mathbb E_{global}[x],\ \sigma_B^2 = \mathbb E_{global}[x^2] - \mu_B^2
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        # Statistics in float32 whatever the autocast dtype, as torch's own BatchNorm does.
        x = x.float()
        moments = world_mean(torch.stack([x.mean(0), x.square().mean(0)]))
        mean, variance = moments[0], (moments[1] - moments[0].square()).clamp_min(0)
        with torch.no_grad():
            count = x.shape[0] * world_size()
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(variance.detach() * count / max(count - 1, 1), self.momentum)
            self.num_batches_tracked += 1
        return (x - mean) / torch.sqrt(variance + self.eps) * self.weight + self.bias
