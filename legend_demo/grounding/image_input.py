"""Accept what a caller may hand the grounder: a `load_image` result, a path or bytes, or an (H, W) array."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..core.errors import ImageInputError


@dataclass(frozen=True)
class GroundingImage:
    """The analysed pixels (H, W) float32 in [0, 1] (lungs dark), the size (W, H) points must be given in, and
    the film's non-identifying DICOM facts (orientation, view, body part; empty for PNG/JPEG/arrays)."""

    array: np.ndarray
    original_size: tuple[int, int]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def array_size(self) -> tuple[int, int]:
        return self.array.shape[1], self.array.shape[0]

    def standard(self, orientation) -> "GroundingImage":
        """The same film in standard display (patient right on the image left); see orientation.py."""
        if orientation.is_standard:
            return self
        return GroundingImage(orientation.to_standard(self.array), orientation.standard_size(self.original_size),
                              self.info)


def as_grounding_image(image: Any) -> GroundingImage:
    """LoadedImage (anything with .array and .original_size), str/Path/bytes (via load_image), or an array."""
    if hasattr(image, "array") and hasattr(image, "original_size"):
        width, height = (int(v) for v in image.original_size)
        return GroundingImage(_as_unit_array(image.array), (width, height), dict(getattr(image, "dicom_info", {}) or {}))
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        from ..core.image_io import load_image

        return as_grounding_image(load_image(image))
    if isinstance(image, np.ndarray):
        array = _as_unit_array(image)
        return GroundingImage(array, (array.shape[1], array.shape[0]))
    raise ImageInputError(
        f"cannot ground on a {type(image).__name__}: give a load_image() result, a file path, or an H×W array")


def _as_unit_array(array: Any) -> np.ndarray:
    """(H, W) or (H, W, 3|4) → (H, W) float32 in [0, 1]; integers scale by their dtype's maximum."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3].mean(axis=2)  # (H, W)
    if array.ndim != 2:
        raise ImageInputError(f"the image must be 2-D (H×W grayscale), got shape {array.shape}")
    if min(array.shape) < 16:
        raise ImageInputError(f"the image is {array.shape[1]}x{array.shape[0]} pixels; need at least 16x16")
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    array = array.astype(np.float32, copy=False)
    low, high = float(array.min()), float(array.max())  # NaN and inf propagate into min/max
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ImageInputError("the image contains NaN or infinite pixel values")
    if low < 0.0 or high > 1.0:
        array = (array - low) / max(high - low, 1e-12)
    return array
