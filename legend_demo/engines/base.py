"""The engine interface every generator implements, and the request/result records it exchanges."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..geometry import FrameMode, SquareFrame
from ..points import LesionPoint, as_points

ProgressFn = Callable[[str, int, int], None]  # (phase, step, total) — phase is "invert" or "denoise"

SIGMA_RATIO_RANGE = (0.02, 0.30)  # UI range; thesis default 0.10, ablated 0.05 / 0.20
DEFAULT_SOURCE_TEXT = "a frontal chest radiograph"


class GenerationCancelled(RuntimeError):
    """Raised inside generate() when the caller's cancel event is set."""


@dataclass
class GenerationRequest:
    """Everything one follow-up generation depends on. Points are in pixels of `image` (original size)."""

    image: Any  # LoadedImage or (H, W) float array in [0, 1], dense tissue bright
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

    def __post_init__(self) -> None:
        self.points = as_points(self.points)
        self.progression_text = (self.progression_text or "").strip()
        self.source_text = (self.source_text or "").strip() or DEFAULT_SOURCE_TEXT

    def validate(self, max_bias_strength: float, max_steps: int = 200) -> None:
        """Raise ValueError naming the offending value (never clamp silently)."""
        if not self.progression_text:
            raise ValueError("the progression description is empty: describe how the disease changed")
        if len(self.progression_text) > 2000:
            raise ValueError(f"the progression description is {len(self.progression_text)} characters; keep it under 2000")
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


@dataclass
class LayerAttention:
    """Captured attention of edit-image queries to source-image keys at one global layer (thesis §4.2.1)."""

    layer: int
    heatmap: np.ndarray  # (h, w), sums to 1 over image keys
    cbi: float
    ear: float
    attn_iou: float | None  # None when there are no lesion points
    text_mass: float  # share of the edit-image queries' attention that went to text keys
    per_step: list[np.ndarray] | None = None  # (h, w) per denoising step, if asked

    def metrics(self) -> dict[str, float]:
        return {"layer": self.layer, "cbi": self.cbi, "ear": self.ear, "attn_iou": self.attn_iou, "text_mass": self.text_mass}


@dataclass
class GenerationResult:
    """A synthetic follow-up plus everything needed to show and audit how it was made."""

    followup: np.ndarray  # (side, side) float32 in [0, 1] — SYNTHETIC
    source_reconstruction: np.ndarray  # (side, side) float32: the source path's output (should match the prior)
    prior_image: np.ndarray  # (side, side) float32: the model's view of the input radiograph
    prior_map: np.ndarray  # (h, w) Gaussian prior R on the token grid (eq. 5.5)
    frame: SquareFrame
    points: list[LesionPoint]  # in original image pixels
    layers: list[LayerAttention]
    timings_s: dict[str, float]
    provenance: dict[str, Any]
    engine: str
    checkpoint: str

    def report(self) -> dict[str, Any]:
        """JSON-serialisable summary (the CLI's report.json and the UI's download)."""
        params = self.provenance.get("parameters", {})
        return {
            "synthetic": True,
            "notice": "Synthetic image generated for research use; not for diagnosis.",
            "engine": self.engine,
            "checkpoint": self.checkpoint,
            "points": [p.to_dict() for p in self.points],
            "sigma_ratio": params.get("sigma_ratio"),
            "bias_strength": params.get("bias_strength"),
            "seed": params.get("seed"),
            "layers": [layer.metrics() for layer in self.layers],
            "timings_s": self.timings_s,
            "provenance": self.provenance,
        }


class Engine(ABC):
    """A follow-up generator. Subclasses load their weights once in __init__ / from_pretrained."""

    name: str = "engine"
    label: str = "engine"
    default_steps: int = 28
    model_side: int = 256
    max_bias_strength: float = 10.0

    @property
    @abstractmethod
    def checkpoint(self) -> str:
        """Human-readable description of the weights in use (path or hub id plus hash)."""

    @property
    @abstractmethod
    def num_layers(self) -> int:
        """Number of global attention layers (FLUX.1-dev: 57)."""

    @property
    @abstractmethod
    def default_vital_layers(self) -> tuple[int, ...]:
        """Layers that get K/V injection and the Gaussian bias by default."""

    @abstractmethod
    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Make one follow-up for `request`; raise ValueError/ImageInputError on bad input, GenerationError on failure."""
