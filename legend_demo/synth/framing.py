"""Detector grid → square output image: film framing around the lungs, plus per-patient pose/shape jitter.

The field of view is a square (isotropic pixels: the patient's physical aspect ratio is kept, never stretched)
of side 1.25 × the larger lung extent, centred left-right on the lungs, its top 5 % of the side above the
apices. Where it reaches past the CT (the scan ends ~2 cm above the apices) the edge rows are replicated (pad).
Jitter (2D, applied to line integrals before exposure, so it acts like moving the patient on the detector):
in-plane rotation, scale, left-right habitus, translation and a smooth elastic displacement field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .volume import ChestVolume


@dataclass(frozen=True)
class FieldOfView:
    """Square field on the detector grid (pixels of voxel_mm): centre (y, x) and side."""

    center_y: float
    center_x: float
    side: float


@dataclass(frozen=True)
class Pose:
    """In-plane jitter of one patient: degrees, scale factors, shifts as fractions of the side, elastic px."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    habitus: float = 1.0  # extra left-right scale (broad vs narrow chest)
    shift_x: float = 0.0
    shift_y: float = 0.0
    elastic_px: float = 0.0
    elastic_seed: int = 0


def chest_field_of_view(volume: ChestVolume) -> FieldOfView:
    """Frame the lungs as a radiographer would (see module docstring)."""
    lungs = volume.lung_mask("bilateral").any(axis=2)  # (Y, X)
    rows, cols = np.nonzero(lungs)
    if rows.size == 0:
        raise ValueError("the label volume has no lung lobes; cannot frame a chest radiograph")
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    side = 1.25 * max(height, width)
    top = rows.min() - 0.05 * side
    return FieldOfView(center_y=top + side / 2, center_x=(cols.min() + cols.max()) / 2, side=float(side))


def sample_pose(rng: np.random.Generator) -> Pose:
    """Random pose and body shape of a new patient."""
    return Pose(
        rotation_deg=float(rng.uniform(-5, 5)),
        scale=float(rng.uniform(0.92, 1.08)),
        habitus=float(rng.uniform(0.94, 1.06)),
        shift_x=float(rng.uniform(-0.04, 0.04)),
        shift_y=float(rng.uniform(-0.04, 0.04)),
        elastic_px=float(rng.uniform(0.0, 1.5)),
        elastic_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _elastic_field(size: int, amplitude_px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth (size, size) x and y displacements, max ≈ amplitude, from a 6×6 random grid upsampled bicubically."""
    coarse = np.random.default_rng(seed).standard_normal((2, 6, 6)).astype(np.float32)  # (2, 6, 6)
    fields = [cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse]  # 2 × (size, size)
    return fields[0] * amplitude_px / 2, fields[1] * amplitude_px / 2


def sampling_maps(fov: FieldOfView, pose: Pose, size: int, extra_shift_px: tuple[float, float] = (0.0, 0.0)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) float32 maps: output pixel → detector pixel (x, y) for cv2.remap.

    extra_shift_px (dx, dy): output-pixel shift added on top (a follow-up repositioned slightly).
    """
    if size < 16:
        raise ValueError(f"output size must be at least 16 px, got {size}")
    pixel = fov.side / size / pose.scale  # detector px per output px
    u = np.arange(size, dtype=np.float32) + 0.5 - size / 2  # (size,) output coords about the centre
    grid_x, grid_y = np.meshgrid(u, u)  # (size, size) each
    elastic_x, elastic_y = _elastic_field(size, pose.elastic_px, pose.elastic_seed)
    grid_x = grid_x + elastic_x - (pose.shift_x * size + extra_shift_px[0])
    grid_y = grid_y + elastic_y - (pose.shift_y * size + extra_shift_px[1])
    angle = math.radians(pose.rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    source_x = fov.center_x - 0.5 + pixel / pose.habitus * (cos * grid_x - sin * grid_y)
    source_y = fov.center_y - 0.5 + pixel * (sin * grid_x + cos * grid_y)
    return source_x.astype(np.float32), source_y.astype(np.float32)


def resample(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(Y, X) detector image → (size, size) output, bilinear, edges replicated (pad past the CT)."""
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), maps[0], maps[1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
