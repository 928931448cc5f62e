"""The I-JEPA predictor: a narrow ViT that predicts target-patch features from the context.

Following Assran et al. 2023 (arXiv 2301.08243, §3): context tokens are
projected to the predictor width and given fixed 2-D sine-cosine positional
embeddings; each target patch is queried by a shared learnable mask token plus
the positional embedding of its location. After the transformer blocks, the
outputs at the mask tokens are normalised and projected back to the encoder
width. Every target block is predicted in its own pass (the context is
repeated per block), so blocks cannot see each other.
"""

from __future__ import annotations

import torch
from timm.layers import build_sincos2d_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from registry import PluginError


class MaskedPredictor(nn.Module):
    """(context tokens, context indices, target indices) -> predicted target features."""

    def __init__(self, embed_dim: int, predictor_dim: int, depth: int, num_heads: int) -> None:
        super().__init__()
        if predictor_dim % 4 or predictor_dim % num_heads:
            raise PluginError(f"predictor_dim {predictor_dim} must be divisible by 4 and by num_heads {num_heads}")
        self.embed = nn.Linear(embed_dim, predictor_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_dim))
        self.blocks = nn.Sequential(*[
            Block(predictor_dim, num_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=nn.LayerNorm) for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(predictor_dim)
        self.project = nn.Linear(predictor_dim, embed_dim)
        self.predictor_dim = predictor_dim
        trunc_normal_(self.mask_token, std=0.02)

    def forward(
        self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """``context`` (N, K_c, D) at ``context_idx`` (N, K_c); ``target_idx`` (N, T, K_t) -> (N, T, K_t, D)."""
        n, blocks, target_len = target_idx.shape
        positions = build_sincos2d_pos_embed(list(grid), self.predictor_dim, device=context.device).to(context.dtype)
        tokens = self.embed(context) + positions[context_idx]
        tokens = tokens.unsqueeze(1).expand(-1, blocks, -1, -1).flatten(0, 1)
        queries = (self.mask_token + positions[target_idx]).flatten(0, 1)
        out = self.blocks(torch.cat([tokens, queries], dim=1))[:, tokens.shape[1]:]
        return self.project(self.norm(out)).view(n, blocks, target_len, -1)
