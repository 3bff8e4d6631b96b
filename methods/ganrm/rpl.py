"""The Reward Projection Layer (paper, Table 6) and the token pooling that feeds it.

Only this MLP trains; the backbone is frozen and its pooled features are cached per image.
"""

from __future__ import annotations

import torch
from torch import nn

#: the class index of "preference proxy data" in the 2-way output (index 0 = generator output)
PPD_CLASS = 1


def pool_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """[B, L, D] tokens → [B, 2D]: token 0 (CLS) ⊕ mean over all L tokens (Table 6 rows 2–4).

    The mean includes the CLS token, as Table 6 writes `Mean(CLIP embedded tokens, dim=1)` over
    the full 1×50×768 sequence.
    """
    if tokens.ndim != 3:
        raise ValueError(f"expected tokens [B, L, D], got shape {tuple(tokens.shape)}")
    return torch.cat([tokens[:, 0], tokens.mean(dim=1)], dim=1)


class PortableDropout(nn.Module):
    """nn.Dropout whose mask is the same on every CPU. torch's CPU `bernoulli_(p)` (inside nn.Dropout)
    draws from MKL's VSL stream on Intel CPUs and from torch's own generator elsewhere, so the same
    seed drops other units on an AMD CPU; here the mask comes from `torch.rand`, torch's own generator
    on every vendor (docs/reproducibility.md). Same distribution and scaling as nn.Dropout."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RewardProjectionLayer(nn.Module):
    """Table 6 rows 5–13: Linear(d→1.5d) → ReLU → BN → Dropout → Linear(1.5d→d) → ReLU → BN →
    + residual → Linear(d→2). With d = 1536 (ViT-B/32 CLS ⊕ mean) it has 7,092,482 parameters."""

    def __init__(self, in_dim: int = 1536, hidden_dim: int | None = None, dropout: float = 0.2):
        super().__init__()
        hidden_dim = hidden_dim if hidden_dim is not None else in_dim * 3 // 2
        self.in_dim, self.hidden_dim, self.dropout = in_dim, hidden_dim, dropout
        self.body = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),  # (5)
            nn.ReLU(),  # (6)
            nn.BatchNorm1d(hidden_dim),  # (7)
            PortableDropout(dropout),  # (8)
            nn.Linear(hidden_dim, in_dim),  # (9)
            nn.ReLU(),  # (10)
            nn.BatchNorm1d(in_dim),  # (11)
        )
        self.head = nn.Linear(in_dim, 2)  # (13)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[B, d] pooled features → [B, 2] logits (class 1 = preference proxy data)."""
        return self.head(features + self.body(features))  # (12) residual add, then (13)

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """r(x): the softmax probability of the PPD class, in [0, 1] (higher = closer to the PPD)."""
        return torch.softmax(self.forward(features), dim=1)[:, PPD_CLASS]
