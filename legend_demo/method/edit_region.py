"""The edit region W: where a follow-up may differ from the prior film (a feathered mask around the lesion points).

W(p) = max_k f(|p − c_k| / (scale·σ)), f = 1 up to INNER, a cosine fall-off to 0 at OUTER (both in units of
scale·σ), where σ is the Gaussian prior's σ (eq. 5.5: σ = ratio·min(h, w) token cells) expressed in the pixels at
hand: ratio·side model pixels, or ratio·square film pixels (the SquareFrame's square). W is exactly 0 beyond
OUTER·scale·σ, so a composite there is the prior, bit for bit. The same W drives keep-region blending in the
sampler (on the token grid) and the composite (on the film grid). Pure numpy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from ..core.points import LesionPoint

INNER = 1.5  # full weight up to 1.5 σ (the prior is exp(−1.125) ≈ 0.32 there)
OUTER = 3.0  # zero from 3 σ on (the prior is ≈ 0.011 there)
SCALE_RANGE = (0.25, 4.0)  # the UI's "edit region size" slider


@dataclass(frozen=True)
class EditRegion:
    """How wide the edit region is (scale × the Gaussian prior's σ) and whether edits are kept (keep-region blending)."""

    scale: float = 1.0
    keep_blend: bool = True  # replace the edit row outside W by the source row at every denoising step

    def check(self) -> None:
        lo, hi = SCALE_RANGE
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not lo <= self.scale <= hi:
            raise ValueError(f"edit region scale={self.scale!r} is outside [{lo}, {hi}]")
        if not isinstance(self.keep_blend, bool):
            raise ValueError(f"keep_blend must be true or false, got {self.keep_blend!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "inner_sigma": INNER, "outer_sigma": OUTER}


def falloff(distance_in_sigma: np.ndarray) -> np.ndarray:
    """f(d): 1 for d ≤ INNER, ½(1 + cos π·(d − INNER)/(OUTER − INNER)) up to OUTER, 0 beyond."""
    t = np.clip((distance_in_sigma - INNER) / (OUTER - INNER), 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)


def region_box(points: Iterable[LesionPoint], size: tuple[int, int], sigma_px: float, scale: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) pixel box of a (W, H) image that holds every pixel with W > 0; None without points."""
    points = list(points)
    if not points:
        return None
    reach = OUTER * scale * sigma_px
    width, height = size
    x0 = max(0, int(np.floor(min(p.x for p in points) - reach)))
    y0 = max(0, int(np.floor(min(p.y for p in points) - reach)))
    x1 = min(width, int(np.ceil(max(p.x for p in points) + reach)) + 1)
    y1 = min(height, int(np.ceil(max(p.y for p in points) + reach)) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def region_weights(points: Iterable[LesionPoint], box: tuple[int, int, int, int], sigma_px: float, scale: float) -> np.ndarray:
    """W at the pixel centres of `box` (x0, y0, x1, y1): (y1 − y0, x1 − x0) float32 in [0, 1]."""
    if not sigma_px > 0 or not scale > 0:
        raise ValueError(f"sigma_px={sigma_px} and scale={scale} must be positive")
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5  # (w,) pixel centres
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5  # (h,)
    nearest = np.full((y1 - y0, x1 - x0), np.inf, dtype=np.float32)  # (h, w) squared distance to the nearest point
    for p in points:
        np.minimum(nearest, (ys[:, None] - p.y) ** 2 + (xs[None, :] - p.x) ** 2, out=nearest)
    return falloff(np.sqrt(nearest) / (scale * sigma_px))


def token_weights(points_model: Iterable[LesionPoint], side: int, grid: tuple[int, int], sigma_ratio: float, scale: float) -> np.ndarray:
    """W on the (h, w) token grid of a (side, side) model view, at token centres; (h, w) float32."""
    h, w = grid
    points = [LesionPoint(p.x * w / side, p.y * h / side) for p in points_model]  # model px → token cells
    if not points:
        return np.zeros((h, w), dtype=np.float32)
    return region_weights(points, (0, 0, w, h), sigma_ratio * min(h, w), scale)
