"""What one follow-up depends on: the GenerationRequest every engine, interface and study builds, validated once.

It sits below the engines (the dual-path editor reads it too) and imports nothing above the method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .composite import OUTPUT_MODES, OutputMode
from .edit_region import EditRegion
from ..core.geometry import FrameMode
from ..core.image_io import LoadedImage
from ..core.limits import check_text
from ..core.points import LesionPoint, as_points, check_inside

ProgressFn = Callable[[str, int, int], None]  # (phase, step, total) — phase is "invert", "denoise" or "decode"

SIGMA_RATIO_RANGE = (0.02, 0.30)  # UI range; thesis default 0.10, ablated 0.05 / 0.20
DEFAULT_SOURCE_TEXT = "a frontal chest radiograph"


@dataclass
class GenerationRequest:
    """Everything one follow-up generation depends on. Points are in pixels of `image` (original size)."""

    image: Any  # LoadedImage, or an (H, W) float array in [0, 1] (dense tissue bright) wrapped into one
    progression_text: str
    source_text: str = DEFAULT_SOURCE_TEXT
    points: list[LesionPoint] = field(default_factory=list)
    sigma_ratio: float = 0.10
    bias_strength: float | None = None  # None: the trained s(τ); 0: GBCA off; >0: fixed strength
    vital_layers: tuple[int, ...] | None = None  # None: the engine's default
    inject: bool = True  # vital-layer K/V injection from the source path
    steps: int | None = None  # None: the engine's default
    seed: int = 0
    noise_mix: float = 0.0  # η in z_T ← √(1−η²)·z_inv + η·ε(seed); 0 = deterministic inversion (seed unused)
    capture_layers: tuple[int, ...] | None = None  # None: the vital layers; (): capture nothing
    capture_per_step: bool = False
    frame_mode: FrameMode = "pad"
    output_mode: OutputMode = "composite"  # "composite": the change on the film; "model-view": raw engine output
    edit_region: EditRegion = field(default_factory=EditRegion)

    def __post_init__(self) -> None:
        self.image = as_loaded_image(self.image)
        self.points = as_points(self.points)
        self.progression_text = (self.progression_text or "").strip()
        self.source_text = (self.source_text or "").strip() or DEFAULT_SOURCE_TEXT

    def validate(self, max_bias_strength: float, max_steps: int = 200) -> None:
        """Raise ValueError naming the offending value (never clamp silently)."""
        if not self.progression_text:
            raise ValueError("the progression description is empty: describe how the disease changed")
        check_text(self.progression_text)
        lo, hi = SIGMA_RATIO_RANGE
        if not (lo <= self.sigma_ratio <= hi):
            raise ValueError(f"sigma_ratio={self.sigma_ratio} is outside [{lo}, {hi}]")
        if self.bias_strength is not None and not (0.0 <= self.bias_strength <= max_bias_strength):
            raise ValueError(f"bias_strength={self.bias_strength} is outside [0, {max_bias_strength}]")
        if self.steps is not None and not (1 <= self.steps <= max_steps):
            raise ValueError(f"steps={self.steps} is outside [1, {max_steps}]")
        if not (0 <= self.seed < 2**32):
            raise ValueError(f"seed={self.seed} is outside [0, 2^32)")
        if not (0.0 <= self.noise_mix < 1.0):
            raise ValueError(f"noise_mix={self.noise_mix} is outside [0, 1)")
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode={self.output_mode!r}; choose one of {', '.join(OUTPUT_MODES)}")
        self.edit_region.check()
        check_inside(self.points, self.image.size)


def as_loaded_image(image: Any) -> LoadedImage:
    """A LoadedImage as is; an (H, W) array of finite values in [0, 1] as a display-only LoadedImage."""
    if isinstance(image, LoadedImage):
        return image
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"image must be a LoadedImage or an (H, W) array, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ValueError(f"image array must hold finite values in [0, 1], got [{array.min()}, {array.max()}]")
    return LoadedImage(array=array, original_size=(array.shape[1], array.shape[0]), source_format="array", bit_depth=32)
