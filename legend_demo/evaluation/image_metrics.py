"""Image similarity on [0, 1] radiographs, optionally restricted to a mask: PSNR and SSIM (Wang et al. 2004).

SSIM follows Wang et al. (2004) with a Gaussian window (σ = 1.5, truncated at 3.5σ → 11×11), K1 = 0.01,
K2 = 0.03, L = data range = 1, weighted population moments. As in Wang's reference code ("valid" filtering),
only window centres at least 5 px from the image border enter the mean. With a mask, the SSIM map / squared
error is averaged over the masked pixels only. Pure numpy/scipy (scikit-image is not a dependency).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5 px: scipy's window half-width for σ = 1.5
K1, K2 = 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"images must be two 2-D arrays of equal shape, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("images contain NaN or infinite values")
    return x, y


def _region(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Bool (H, W) of the pixels to average over; raise when the mask is mis-shaped or selects nothing."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    region = np.asarray(mask).astype(bool)
    if region.shape != shape:
        raise ValueError(f"mask shape {region.shape} differs from image shape {shape}")
    if not region.any():
        raise ValueError("mask selects no pixels")
    return region


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the (masked) pixels."""
    x, y = _pair(a, b)
    region = _region(mask, x.shape)
    return float(np.mean((x[region] - y[region]) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """PSNR = 10·log10(L² / MSE) in dB over the (masked) pixels; +inf when the pixels are identical."""
    if data_range <= 0:
        raise ValueError(f"data_range={data_range} must be positive")
    error = mse(a, b, mask)
    return float("inf") if error == 0 else float(10.0 * np.log10(data_range**2 / error))


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004, eq. 13) with Gaussian-weighted local moments; (H, W) float64."""
    x, y = _pair(a, b)
    if min(x.shape) <= 2 * SSIM_RADIUS:
        raise ValueError(f"images of shape {x.shape} are too small for an 11×11 SSIM window")
    blur = lambda v: ndimage.gaussian_filter(v, SSIM_SIGMA, mode="reflect", truncate=SSIM_TRUNCATE)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Mean SSIM over valid window centres (≥ 5 px from the border), restricted to `mask` when given."""
    smap = ssim_map(a, b, data_range)
    region = _region(mask, smap.shape).copy()
    r = SSIM_RADIUS
    interior = np.zeros_like(region)
    interior[r:-r, r:-r] = True
    region &= interior
    if not region.any():
        raise ValueError("mask selects no pixels at least 5 px from the image border")
    return float(smap[region].mean())
