"""Image ⇄ token codecs behind one protocol: a square grayscale [0, 1] model view ⇄ packed tokens (B, N_img, C).

- FluxLatentCodec: FLUX's AutoencoderKL (8× down) then 2×2 packing → 16-px tokens (FLUX.1-dev at 256²: 16×16).
- PixelCodec: the embedded model's exact pixel space, space-to-depth f then 2×2 packing → 2f-px tokens.
Packing and image ids are written here (a few lines each) instead of calling FluxPipeline's private helpers;
tests check they equal diffusers' own layout.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Codec(Protocol):
    def token_grid(self, side: int) -> tuple[int, int]:
        """(h, w) token grid of a (side, side) model view; ValueError when side does not tile."""

    def encode(self, images01: torch.Tensor, device, dtype) -> torch.Tensor:
        """(B, side, side) in [0, 1] → (B, N_img, C) model space on device/dtype."""

    def decode(self, tokens: torch.Tensor, side: int) -> np.ndarray:
        """(B, N_img, C) → (B, side, side) float32 in [0, 1] (display range)."""


def pack(latent: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H/2·W/2, 4C), channel-major 2×2 patches: FLUX's token layout."""
    b, c, h, w = latent.shape
    x = latent.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)  # (B, h/2, w/2, C, 2, 2)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H/2·W/2, 4C) → (B, C, H, W): the inverse of pack."""
    b, _, channels = tokens.shape
    x = tokens.reshape(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)  # (B, C, h/2, 2, w/2, 2)
    return x.reshape(b, channels // 4, height, width)


def image_ids(grid: tuple[int, int], device, dtype) -> torch.Tensor:
    """(h·w, 3) RoPE positions (0, row, column) of the image tokens, row-major like pack()."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")  # (h, w) each
    return torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(h * w, 3).to(device=device, dtype=dtype)


class FluxLatentCodec:
    """Grayscale model view ⇄ packed FLUX latent through an AutoencoderKL (RGB channels repeated)."""

    def __init__(self, vae, vae_scale_factor: int):
        self.vae = vae
        self.scale = vae_scale_factor
        self.shift = vae.config.shift_factor or 0.0
        self.scaling = vae.config.scaling_factor

    def token_grid(self, side: int) -> tuple[int, int]:
        cell = self.scale * 2  # VAE downsampling × 2×2 packing
        if side % cell:
            raise ValueError(f"model side {side} must be a multiple of {cell}")
        return side // cell, side // cell

    @torch.no_grad()
    def encode(self, images01: torch.Tensor, device, dtype) -> torch.Tensor:
        x = images01.to(device=device, dtype=self.vae.dtype)[:, None].repeat(1, 3, 1, 1) * 2 - 1  # (B, 3, S, S)
        latent = (self.vae.encode(x).latent_dist.mode() - self.shift) * self.scaling  # (B, C, S/s, S/s)
        return pack(latent).to(dtype)  # (B, N_img, 4C)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, side: int) -> np.ndarray:
        latent = unpack(tokens, side // self.scale, side // self.scale)  # (B, C, S/s, S/s)
        image = self.vae.decode(latent.to(self.vae.dtype) / self.scaling + self.shift).sample  # (B, 3, S, S) ≈[-1, 1]
        return ((image.float().mean(dim=1) + 1) / 2).clamp(0, 1).cpu().numpy().astype(np.float32)


class PixelCodec:
    """(side, side) image in [0, 1] ⇄ (B, (side/2f)², 4f²) tokens by space-to-depth f and 2×2 packing (lossless)."""

    def __init__(self, space_to_depth: int = 4):
        self.factor = space_to_depth

    def token_grid(self, side: int) -> tuple[int, int]:
        cell = self.factor * 2
        if side % cell:
            raise ValueError(f"model side {side} must be a multiple of {cell}")
        return side // cell, side // cell

    def pack(self, images: torch.Tensor) -> torch.Tensor:
        """(B, side, side) in [-1, 1] → (B, N_img, 4f²)."""
        b, h, w = images.shape
        f = self.factor
        depth = images.reshape(b, h // f, f, w // f, f).permute(0, 2, 4, 1, 3)  # (B, f, f, h/f, w/f)
        return pack(depth.reshape(b, f * f, h // f, w // f))

    def unpack(self, tokens: torch.Tensor, side: int) -> torch.Tensor:
        """(B, N_img, 4f²) → (B, side, side)."""
        b, f = tokens.shape[0], self.factor
        depth = unpack(tokens, side // f, side // f).reshape(b, f, f, side // f, side // f)
        return depth.permute(0, 3, 1, 4, 2).reshape(b, side, side)

    def encode(self, images01: torch.Tensor, device=None, dtype=None) -> torch.Tensor:
        tokens = self.pack(images01.float() * 2 - 1)
        return tokens.to(device=device or tokens.device, dtype=dtype or tokens.dtype)

    def decode(self, tokens: torch.Tensor, side: int) -> np.ndarray:
        images = (self.unpack(tokens.float().cpu(), side) + 1) / 2
        return images.clamp(0, 1).numpy().astype(np.float32)  # (B, side, side) display range
