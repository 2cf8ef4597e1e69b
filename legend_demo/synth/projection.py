"""Parallel-beam projection along the depth (P→A) axis, with a small oblique tilt for patient rotation.

Geometry (documented simplification): a PA chest film is taken at ~180 cm source-image distance, so the beam
is nearly parallel (magnification ≈ 1.1, roughly uniform); we use parallel rays. A small patient rotation about
the vertical axis (yaw) or a lordotic tilt (pitch) is modelled as an oblique parallel projection: the ray
through detector pixel (y, x) visits (y + tan(pitch)·(d − d_c), x + tan(yaw)·(d − d_c), d), d_c = mid-depth.
Projection is linear, so anatomy and lesion changes are projected separately and added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DEPTH_CHUNK = 32


@dataclass(frozen=True)
class Tilt:
    """Ray obliquity in degrees: yaw about the patient's vertical axis, pitch about the left-right axis."""

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0

    @property
    def slopes(self) -> tuple[float, float]:
        """(dy/dd, dx/dd) of the rays in voxels per voxel of depth."""
        return math.tan(math.radians(self.pitch_deg)), math.tan(math.radians(self.yaw_deg))


def project(fields: np.ndarray, voxel_mm: float, tilt: Tilt, *, origin: tuple[int, int, int] = (0, 0, 0),
            window: tuple[int, int, int, int] | None = None, depth_center: float | None = None,
            border: bool = False) -> np.ndarray:
    """Line integrals ∫f ds (mm·f) of fields (C, h, w, dd) placed at `origin` (y0, x0, d0) of the full grid.

    window (Y0, Y1, X0, X1): detector pixels (full-grid coordinates) to compute; default the fields' footprint.
    border: replicate edge voxels outside the fields (anatomy) instead of zeros (lesion deltas).
    Returns (C, Y1 - Y0, X1 - X0) float64, summed over depth in a fixed order (deterministic).
    """
    if fields.ndim != 4:
        raise ValueError(f"fields must be (C, h, w, d), got shape {fields.shape}")
    channels, height, width, depth = fields.shape
    y0, x0, d0 = origin
    Y0, Y1, X0, X1 = window if window is not None else (y0, y0 + height, x0, x0 + width)
    center = depth_center if depth_center is not None else d0 + (depth - 1) / 2
    slope_y, slope_x = tilt.slopes
    step_mm = voxel_mm * math.sqrt(1.0 + slope_y**2 + slope_x**2)  # oblique rays are longer per slice
    rows = torch.arange(Y0, Y1, dtype=torch.float32) - y0  # (H,) in field pixels
    cols = torch.arange(X0, X1, dtype=torch.float32) - x0  # (W,)
    volume = torch.from_numpy(np.ascontiguousarray(np.moveaxis(fields, 3, 0), dtype=np.float32))  # (dd, C, h, w)
    total = np.zeros((channels, Y1 - Y0, X1 - X0), dtype=np.float64)
    for start in range(0, depth, DEPTH_CHUNK):
        offsets = torch.arange(start, min(start + DEPTH_CHUNK, depth), dtype=torch.float32) + d0 - center  # (n,)
        gy = rows[None, :, None] + slope_y * offsets[:, None, None]  # (n, H, 1)
        gx = cols[None, None, :] + slope_x * offsets[:, None, None]  # (n, 1, W)
        gy, gx = torch.broadcast_tensors(gy, gx)  # (n, H, W) each
        grid = torch.stack((2 * gx / max(width - 1, 1) - 1, 2 * gy / max(height - 1, 1) - 1), dim=-1)  # (n, H, W, 2)
        slab = volume[start:start + offsets.numel()]  # (n, C, h, w)
        sampled = F.grid_sample(slab, grid, mode="bilinear", align_corners=True,
                                padding_mode="border" if border else "zeros")  # (n, C, H, W)
        for plane in sampled.numpy():  # (C, H, W) each, added in order → identical results on any thread count
            total += plane
    return total * step_mm
