"""Attention diagnostics on a token-grid heatmap H (thesis eqs. 4.5–4.7): CBI, EAR and Attn-IoU.

H is a softmax attention *probability* map (non-negative); the thesis reads logits but calls the result
attention mass — logits can be negative, so a ratio of their sums is undefined. Pure numpy.

Rounding on small grids: a corner box is ⌊α·w + ½⌋ × ⌊α·h + ½⌋ cells and the edge band is
⌊β·min(h, w) + ½⌋ cells wide (round half up), each at least 1 cell and at most half the grid.
E.g. on FLUX's 16×16 grid at 256²: corner boxes 2×2 (α = 0.12 → 1.92), band 1 cell (β = 0.08 → 1.28).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .prior import PointLike, lesion_region

ALPHA = 0.12  # corner box side as a share of the grid side
BETA = 0.08  # edge band width as a share of min(h, w)


def _cells(share: float, length: int) -> int:
    """Round share·length half up, kept within [1, length // 2] (documented in the module docstring)."""
    return int(min(max(np.floor(share * length + 0.5), 1), max(length // 2, 1)))


def _checked(heatmap: np.ndarray) -> np.ndarray:
    h = np.asarray(heatmap, dtype=np.float64)
    if h.ndim != 2 or h.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("heatmap contains NaN or infinite values")
    if h.min() < 0:
        raise ValueError(f"heatmap has negative values (min {h.min():.4g}); pass attention probabilities")
    if h.sum() <= 0:
        raise ValueError("heatmap sums to 0: no attention mass to share out")
    return h


def corner_mask(grid: tuple[int, int], alpha: float = ALPHA) -> np.ndarray:
    """The four corner boxes 𝒞, each (α·w) × (α·h) cells; (h, w) bool."""
    if not (0 < alpha <= 0.5):
        raise ValueError(f"alpha={alpha} must lie in (0, 0.5]")
    h, w = grid
    ch, cw = _cells(alpha, h), _cells(alpha, w)
    mask = np.zeros((h, w), dtype=bool)
    for rows in (slice(0, ch), slice(h - ch, h)):
        for cols in (slice(0, cw), slice(w - cw, w)):
            mask[rows, cols] = True
    return mask


def edge_mask(grid: tuple[int, int], beta: float = BETA) -> np.ndarray:
    """The border band ℰ of width β·min(h, w) cells; (h, w) bool."""
    if not (0 < beta <= 0.5):
        raise ValueError(f"beta={beta} must lie in (0, 0.5]")
    h, w = grid
    b = _cells(beta, min(h, w))
    mask = np.ones((h, w), dtype=bool)
    mask[b : h - b, b : w - b] = False
    return mask


def cbi(heatmap: np.ndarray, alpha: float = ALPHA) -> float:
    """Eq. 4.5: Corner Bias Index = share of attention mass in the four corner boxes."""
    h = _checked(heatmap)
    return float(h[corner_mask(h.shape, alpha)].sum() / h.sum())


def ear(heatmap: np.ndarray, beta: float = BETA) -> float:
    """Eq. 4.6: Edge Attention Ratio = share of attention mass in the border band."""
    h = _checked(heatmap)
    return float(h[edge_mask(h.shape, beta)].sum() / h.sum())


def attn_iou(
    heatmap: np.ndarray,
    points: Iterable[PointLike],
    image_size: tuple[int, int],
    sigma_ratio: float = 0.10,
    eta: float = 0.5,
) -> float:
    """Eq. 4.7: Attn-IoU = share of attention mass inside the lesion region Ω (points in image pixels)."""
    h = _checked(heatmap)
    region = lesion_region(points, image_size, h.shape, sigma_ratio, eta)
    if not region.any():
        raise ValueError("attn_iou needs at least one lesion point (the lesion region Ω is empty)")
    return float(h[region].sum() / h.sum())


@dataclass
class LayerAttention:
    """Captured attention of edit-image queries to source-image keys at one global layer (thesis §4.2.1), measured."""

    layer: int
    heatmap: np.ndarray  # (h, w), sums to 1 over image keys
    cbi: float
    ear: float
    attn_iou: float | None  # None when there are no lesion points
    text_mass: float  # share of the edit-image queries' attention that went to text keys
    per_step: list[np.ndarray] | None = None  # (h, w) per denoising step (or generated row), if asked

    @classmethod
    def measure(cls, layer: int, heatmap: np.ndarray, text_mass: float, points_model: list, side: int,
                sigma_ratio: float, per_step: list[np.ndarray] | None = None) -> "LayerAttention":
        """One layer's (h, w) map summing to 1 with its CBI / EAR (eqs. 4.5–4.6) and, with points, Attn-IoU (eq. 4.7)."""
        iou = attn_iou(heatmap, points_model, (side, side), sigma_ratio) if points_model else None
        return cls(layer=layer, heatmap=heatmap.astype(np.float32), cbi=cbi(heatmap), ear=ear(heatmap), attn_iou=iou,
                   text_mass=float(text_mass), per_step=per_step)

    def metrics(self) -> dict[str, float]:
        return {"layer": self.layer, "cbi": self.cbi, "ear": self.ear, "attn_iou": self.attn_iou, "text_mass": self.text_mass}
