"""Heatmaps over radiographs, drawn one way everywhere (CLI outputs, the page's maps, the point editor's overlay).

Colours come from OpenCV's colour maps ("jet" for the Gaussian prior and attention maps, "inferno" for
uncertainty); a token-grid map is shown on a stated scale [0, peak], upsampled without interpolation (each token
stays a visible cell) and blended over the grey image.
"""
from __future__ import annotations

import cv2
import numpy as np

COLOUR_MAPS = {"jet": cv2.COLORMAP_JET, "inferno": cv2.COLORMAP_INFERNO}


def to_uint8(image01: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(image01, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8)


def colorize(values01: np.ndarray, name: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] → (H, W, 3) uint8 RGB in colour map `name`."""
    if name not in COLOUR_MAPS:
        raise ValueError(f"colour map {name!r}; choose one of {', '.join(COLOUR_MAPS)}")
    return cv2.cvtColor(cv2.applyColorMap(to_uint8(values01), COLOUR_MAPS[name]), cv2.COLOR_BGR2RGB)


def heat_overlay(image01: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, peak: float | None = None) -> np.ndarray:
    """A token-grid heatmap (h, w) on the scale [0, peak] (default: its own max) blended over the (S, S) grey image:
    (S, S, 3) uint8."""
    image01, heat = np.asarray(image01, dtype=np.float32), np.asarray(heatmap, dtype=np.float32)
    if image01.ndim != 2 or heat.ndim != 2:
        raise ValueError(f"need 2-D image and map, got {image01.shape} and {heat.shape}")
    height, width = image01.shape
    peak = float(heat.max()) if peak is None else float(peak)
    norm = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat)
    up = cv2.resize(norm, (width, height), interpolation=cv2.INTER_NEAREST)  # (S, S)
    grey = np.repeat(to_uint8(image01)[..., None], 3, axis=2).astype(np.float32)
    return ((1 - alpha) * grey + alpha * colorize(up).astype(np.float32)).round().astype(np.uint8)


def heat_rgba(values01: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1] → (h, w, 4) uint8 RGBA in the same colours, alpha proportional to the value (an overlay)."""
    return np.dstack([colorize(values01), to_uint8(values01)])
