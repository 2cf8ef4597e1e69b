"""The lesion-conditioned Gaussian spatial prior R on the generator's token grid (thesis eqs. 4.8–4.9, 5.4–5.5).

Pure numpy; no model imports.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable, Mapping

import numpy as np

from ..core.points import LesionPoint, as_points, check_inside, real_number

PointLike = LesionPoint | Mapping


def _check_size(name: str, size: Any) -> tuple[int, int]:
    """Two positive whole numbers; ValueError (never TypeError, never a rounded 16.7) otherwise."""
    if isinstance(size, (str, bytes)) or not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"{name}={size!r} must be a pair of positive integers")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in size):
        raise ValueError(f"{name}={tuple(size)!r} must be two positive integers")
    return int(size[0]), int(size[1])


def _check_sigma(sigma_ratio: Any, h: int, w: int) -> float:
    """σ = sigma_ratio · min(h, w) in token cells; ValueError when 2σ² is not a positive finite number."""
    ratio = real_number("sigma_ratio", sigma_ratio)
    sigma = ratio * min(h, w)
    if ratio <= 0 or not 0.0 < 2.0 * sigma * sigma < float("inf"):
        raise ValueError(f"sigma_ratio={sigma_ratio!r} gives σ = {sigma:g} cells on a {h}x{w} grid; "
                         "it must be positive and neither vanishingly small nor huge")
    return sigma


def project_points(
    points: Iterable[PointLike], image_size: tuple[int, int], grid: tuple[int, int]
) -> np.ndarray:
    """Eq. 5.4: x' = floor(x / W · w), y' = floor(y / H · h); returns (N, 2) int rows of (y', x')."""
    width, height = _check_size("image_size", image_size)
    h, w = _check_size("grid", grid)
    pts = as_points(points)
    check_inside(pts, (width, height))
    rows = [(int(np.floor(p.y / height * h)), int(np.floor(p.x / width * w))) for p in pts]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)  # (N, 2): (y', x')


def gaussian_prior(
    points: Iterable[PointLike],
    image_size: tuple[int, int],
    grid: tuple[int, int],
    sigma_ratio: float = 0.10,
) -> np.ndarray:
    """Eq. 5.5: R(i, j) = max_k exp(-((i - y'_k)² + (j - x'_k)²) / (2σ²)), σ = sigma_ratio · min(h, w).

    Max, not sum, so overlapping points make no hot spots; no points give an all-zero map (no bias).
    """
    h, w = _check_size("grid", grid)
    sigma = _check_sigma(sigma_ratio, h, w)
    centres = project_points(points, image_size, (h, w))  # (N, 2)
    prior = np.zeros((h, w), dtype=np.float32)
    if len(centres) == 0:
        return prior
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")  # (h, w) each
    for y, x in centres:
        bump = np.exp(-((ii - y) ** 2 + (jj - x) ** 2) / (2.0 * sigma**2))  # (h, w)
        np.maximum(prior, bump.astype(np.float32), out=prior)
    return prior


def lesion_region(
    points: Iterable[PointLike],
    image_size: tuple[int, int],
    grid: tuple[int, int],
    sigma_ratio: float = 0.10,
    eta: float = 0.5,
) -> np.ndarray:
    """Ω of thesis §4.2.1: the max-pooled Gaussian bumps thresholded at η of their maximum; (h, w) bool."""
    if not (0.0 < real_number("eta", eta) <= 1.0):
        raise ValueError(f"eta={eta} must lie in (0, 1]")
    prior = gaussian_prior(points, image_size, grid, sigma_ratio)
    if prior.max() <= 0:
        return np.zeros(prior.shape, dtype=bool)
    return prior >= eta * prior.max()
