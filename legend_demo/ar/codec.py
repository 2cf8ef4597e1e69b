"""Emu3's VQ image tokenizer behind the project's codec convention (method/codecs.py):
a square grayscale [0, 1] model view ⇄ (B, h·w) codebook indices in row-major order.

The grid is the tokenizer's: h = w = side / spatial factor (Emu3-Gen: factor 8, so 32×32 at the thesis's 256²).
Pixels are normalised as the checkpoint's image processor does (Emu3: mean = std = 0.5, i.e. [-1, 1]); the gray
value goes to all three channels and the decoded channels are averaged back to gray.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


class Emu3VQCodec:
    def __init__(self, vqmodel, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)):
        self.vq = vqmodel
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)  # (1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if self.mean.shape[1] != self.vq.config.in_channels or (self.std <= 0).any():
            raise ValueError(f"image mean {list(mean)} / std {list(std)} do not fit a {self.vq.config.in_channels}-channel tokenizer")

    @property
    def factor(self) -> int:
        return int(self.vq.spatial_scale_factor)

    def token_grid(self, side: int) -> tuple[int, int]:
        """(h, w) token grid of a (side, side) view; ValueError when side does not tile."""
        if side < self.factor or side % self.factor:
            raise ValueError(f"model side {side} must be a positive multiple of the tokenizer's factor {self.factor}")
        return side // self.factor, side // self.factor

    @torch.no_grad()
    def encode(self, images01: torch.Tensor, device=None, dtype=None) -> torch.Tensor:
        """(B, side, side) in [0, 1] → (B, h·w) long codes (device/dtype are the codes' device; dtype unused)."""
        if images01.ndim != 3 or images01.shape[1] != images01.shape[2]:
            raise ValueError(f"expected (B, side, side) images, got shape {tuple(images01.shape)}")
        batch, side = images01.shape[0], images01.shape[-1]
        self.token_grid(side)
        param = next(self.vq.parameters())
        x = images01.float().cpu()[:, None].expand(-1, self.mean.shape[1], -1, -1)  # (B, 3, side, side)
        x = ((x - self.mean) / self.std).to(device=param.device, dtype=param.dtype)
        sizes = torch.tensor([[side, side]] * batch, device=param.device)
        codes = torch.stack(self.vq.encode(x, sizes).image_tokens)  # (B, h, w)
        return codes.reshape(batch, -1).to(device or codes.device)  # (B, h·w)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, side: int) -> np.ndarray:
        """(B, h·w) codes → (B, side, side) float32 in [0, 1]."""
        h, w = self.token_grid(side)
        if codes.ndim != 2 or codes.shape[1] != h * w:
            raise ValueError(f"expected (B, {h * w}) codes for a {side}² view, got shape {tuple(codes.shape)}")
        param = next(self.vq.parameters())
        image = self.vq.decode(codes.reshape(-1, h, w).to(param.device))  # (B, 3, side, side) normalised
        image = image.float().cpu() * self.std + self.mean
        return image.mean(dim=1).clamp(0, 1).numpy().astype(np.float32)  # (B, side, side)

    def round_trip(self, images01: torch.Tensor) -> np.ndarray:
        """decode(encode(x)): the tokenizer's own view of x (its reconstruction error included)."""
        return self.decode(self.encode(images01), images01.shape[-1])
