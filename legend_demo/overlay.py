"""Heatmaps over the radiograph: per-layer attention maps and the Gaussian prior, as RGB uint8 images."""
from __future__ import annotations

import numpy as np


def heat_overlay(image01: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """(side, side) grayscale + (h, w) map (any scale) → (side, side, 3) uint8, the map in 'inferno' over the image."""
    import cv2
    from matplotlib import colormaps

    image01 = np.asarray(image01, dtype=np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if image01.ndim != 2 or heat.ndim != 2:
        raise ValueError(f"need 2-D image and map, got {image01.shape} and {heat.shape}")
    span = float(heat.max() - heat.min())
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    heat = cv2.resize(heat, image01.shape[::-1], interpolation=cv2.INTER_NEAREST)  # (side, side)
    colour = colormaps["inferno"](heat)[..., :3]  # (side, side, 3) in [0, 1]
    gray = np.repeat(image01[..., None], 3, axis=2)
    mixed = (1 - alpha) * gray + alpha * colour
    return (np.clip(mixed, 0, 1) * 255).round().astype(np.uint8)


def to_uint8(image01: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(image01, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8)
