"""Rectified-flow training maths (the FLUX convention of legend_demo/method/sampling.py).

x_t = (1 − t)·x₀ + t·ε, the model predicts v = ε − x₀; t ~ logit-normal (sigmoid of N(m, s²), SD3/FLUX training).
"""
from __future__ import annotations

import torch


def logit_normal(n: int, generator: torch.Generator, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """(n,) flow times in (0, 1): t = sigmoid(m + s·z), z ~ N(0, 1)."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator))


def noisy(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 − t)·x₀ + t·ε; x0, noise (B, N, C), t (B,)."""
    t = t.to(x0.dtype).reshape(-1, 1, 1)  # (B, 1, 1)
    return (1 - t) * x0 + t * noise


def target_velocity(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v* = ε − x₀ (B, N, C)."""
    return noise - x0


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, token_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Σ w·(pred − target)² / Σ w over tokens and channels; token_weight (B, N) or None (plain MSE)."""
    err = (pred.float() - target.float()).pow(2)  # (B, N, C)
    if token_weight is None:
        return err.mean()
    w = token_weight.to(err).unsqueeze(-1).expand_as(err)  # (B, N, C)
    return (w * err).sum() / w.sum()
