"""HU → linear attenuation μ (1/mm), split into two channels so beam hardness can vary per patient cheaply.

μ(HU) = μ_w·clip(1 + HU/1000, 0, 1) + k·μ_w·max(HU, 0)/1000, μ_w = 0.02 /mm (water at ~70 keV).
Air (−1000 HU) → 0, water → μ_w; above 0 HU the slope is k ≥ 1: radiographs use a softer effective energy than
CT, so bone (high HU, calcium) attenuates relatively more; k ∈ [1.3, 2] stands in for kVp. Line integrals are
kept per channel: L = L_water + k·L_dense.
"""
from __future__ import annotations

import numpy as np

WATER_MU_PER_MM = 0.02


def attenuation_channels(hu: np.ndarray) -> np.ndarray:
    """(…) HU → (2, …) float32: [water-like μ, dense excess μ per unit k]."""
    hu = np.asarray(hu, dtype=np.float32)
    water = WATER_MU_PER_MM * np.clip(1.0 + np.minimum(hu, 0.0) / 1000.0, 0.0, 1.0)  # (…)
    dense = WATER_MU_PER_MM * np.maximum(hu, 0.0) / 1000.0  # (…)
    return np.stack((water, dense)).astype(np.float32)  # (2, …)


def combine_channels(line_integrals: np.ndarray, bone_gain: float) -> np.ndarray:
    """(2, H, W) per-channel ∫μ → (H, W) total ∫μ = L_water + k·L_dense."""
    if not 0.5 <= bone_gain <= 4.0:
        raise ValueError(f"bone_gain k must be within [0.5, 4], got {bone_gain}")
    return line_integrals[0] + bone_gain * line_integrals[1]
