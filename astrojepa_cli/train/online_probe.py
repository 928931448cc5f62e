"""Online probe: a linear classifier trained alongside the encoder on detached embeddings.

It never sends gradients into the encoder; it only reports, every epoch, how
linearly separable the current embeddings are on the held-out split.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class OnlineProbe(nn.Module):
    def __init__(self, embed_dim: int, num_classes: int, lr: float = 1e-3) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(embed_dim, affine=False)
        self.head = nn.Linear(embed_dim, num_classes)
        self.optimizer = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=0.0)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(embeddings.float()))

    def learn(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """One optimiser step of cross-entropy on the labelled rows (label >= 0)."""
        # Unlabelled rows are ignored without a data-dependent branch, so no host-device sync.
        logits = self(embeddings.detach())
        loss = F.cross_entropy(logits, labels, ignore_index=-1, reduction="sum") / (labels >= 0).sum().clamp_min(1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    @torch.no_grad()
    def accuracy(self, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
        was_training = self.training
        self.eval()
        predicted = self(embeddings).argmax(1)
        self.train(was_training)
        return float((predicted == labels).float().mean())
