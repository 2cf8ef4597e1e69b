"""The engine interface every generator implements, and the request/result records it exchanges.

Engine.generate is the one boundary: it validates the request, lets the engine make its model-view rows
(`_generate`), then turns them into a film (legend_demo/composite.py): by default only the change, composited
onto the prior at its own resolution inside the edit region W; in "model-view" mode the raw engine output.
"""
from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..grounding.limits import check_text
from ..composite import OUTPUT_MODES, Film, OutputMode, composite_change, drawing_warnings, model_view_film
from ..edit_region import EditRegion
from ..errors import GenerationError
from ..geometry import FrameMode, SquareFrame
from ..grounding.orientation import check_frontal_chest
from ..image_io import LoadedImage
from ..points import LesionPoint, as_points, check_inside

ProgressFn = Callable[[str, int, int], None]  # (phase, step, total) — phase is "invert" or "denoise"

SIGMA_RATIO_RANGE = (0.02, 0.30)  # UI range; thesis default 0.10, ablated 0.05 / 0.20
DEFAULT_SOURCE_TEXT = "a frontal chest radiograph"


class GenerationCancelled(RuntimeError):
    """Raised inside generate() when the caller's cancel event is set."""


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
    """A synthetic follow-up plus everything needed to show and audit how it was made.

    `film` is what users get (the prior film with the change composited in, or the upsampled model view);
    the (side, side) arrays are the engine's model view, kept for research displays and the metrics.
    """

    followup: np.ndarray  # (side, side) float32 in [0, 1]: the edit row (model view) — SYNTHETIC
    source_reconstruction: np.ndarray  # (side, side) float32: the source row (should match the prior's model view)
    prior_image: np.ndarray  # (side, side) float32: the model's view of the input radiograph
    prior_map: np.ndarray  # (h, w) Gaussian prior R on the token grid (eq. 5.5)
    frame: SquareFrame
    points: list[LesionPoint]  # in original image pixels
    layers: list[LayerAttention]
    timings_s: dict[str, float]
    provenance: dict[str, Any]
    engine: str
    checkpoint: str
    film: Film | None = None  # set by Engine.generate — SYNTHETIC

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's report.json, the API's and the UI's report): plain numbers and lists only."""
        params = self.provenance.get("parameters", {})
        return plain_json({
            "synthetic": True,
            "notice": "Synthetic image generated for research use; not for diagnosis.",
            "engine": self.engine,
            "checkpoint": self.checkpoint,
            "points": [p.to_dict() for p in self.points],
            "sigma_ratio": params.get("sigma_ratio"),
            "bias_strength": params.get("bias_strength"),
            "seed": params.get("seed"),
            "layers": [layer.metrics() for layer in self.layers],
            "output": self.film.params if self.film is not None else None,
            "timings_s": self.timings_s,
            "provenance": self.provenance,
        })


def plain_json(data: Any) -> Any:
    """`data` with numpy arrays/scalars as lists/numbers and anything else unknown as text (JSON-ready)."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        return str(value)

    return json.loads(json.dumps(data, default=plain))


class Engine(ABC):
    """A follow-up generator. Subclasses load their weights once in __init__ / from_pretrained."""

    name: str = "engine"
    label: str = "engine"
    default_steps: int = 28
    model_side: int = 256
    max_bias_strength: float = 10.0
    oom_advice: str = "try fewer capture layers"  # said after a CUDA out-of-memory error
    change_smoothing_px: float = 0.0  # σ (model pixels) of the low-pass applied to the change before compositing

    def __init__(self, *, checkpoint: str, fingerprints: dict[str, Any] | None = None,
                 load_options: dict[str, Any] | None = None):
        self._checkpoint = checkpoint
        self.fingerprints = fingerprints or {}  # name → {source (public name), sha256, scope}
        self.load_options = load_options or {}
        self._lock = threading.Lock()  # one generation at a time per loaded model

    @property
    def checkpoint(self) -> str:
        """Human-readable description of the weights in use (public name, never a server path)."""
        return self._checkpoint

    @property
    @abstractmethod
    def num_layers(self) -> int:
        """Number of global attention layers (FLUX.1-dev: 57)."""

    @property
    @abstractmethod
    def default_vital_layers(self) -> tuple[int, ...]:
        """Layers that get K/V injection and the Gaussian bias by default."""

    @property
    @abstractmethod
    def token_grid(self) -> tuple[int, int]:
        """(h, w) token grid of the model view (where the Gaussian prior and attention maps live)."""

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Make one follow-up for `request`; raise ValueError/ImageInputError on bad input, GenerationError on failure."""
        request.validate(self.max_bias_strength)
        warnings = check_frontal_chest(request.image)  # raises LateralViewError for a lateral film
        warnings += self.text_warnings(request.progression_text)
        started = time.perf_counter()
        with self._lock:
            result = self._generate_releasing_memory(request, progress, cancel)
        t0 = time.perf_counter()
        result.film = make_film(request, result, self.change_smoothing_px)
        result.timings_s["film"] = round(time.perf_counter() - t0, 4)
        result.timings_s["total"] = round(time.perf_counter() - started, 4)
        result.provenance.setdefault("parameters", {})["output"] = result.film.params
        result.provenance["warnings"] = warnings + drawing_warnings(result.film.params)
        return result

    def text_unread(self, text: str) -> str:
        """The end of `text` this engine's text encoder cuts off ('' when it reads all of it)."""
        return ""

    def text_warnings(self, text: str) -> list[str]:
        """A warning when the text encoder does not read the whole description (the report and the page say it)."""
        unread = self.text_unread(text)
        if not unread:
            return []
        read = max(0, len(text.split()) - len(unread.split()))
        return [f"the model reads only the first {read} words of the description; it did not read: {unread}"]

    def _generate_releasing_memory(self, request, progress, cancel) -> GenerationResult:
        import torch

        try:
            return self._generate(request, progress, cancel)
        except torch.OutOfMemoryError as exc:
            from .cuda import release

            release()
            raise GenerationError(f"out of GPU memory ({exc.__class__.__name__}); memory released — "
                                  f"{self.oom_advice}") from None

    @abstractmethod
    def _generate(
        self, request: GenerationRequest, progress: ProgressFn | None, cancel: threading.Event | None
    ) -> GenerationResult:
        """The engine's own work on a validated request: the model-view rows, maps, timings and provenance."""


def make_film(request: GenerationRequest, result: GenerationResult, smoothing_px: float = 0.0) -> Film:
    """The composite (default) or the upsampled model view on the prior film's own grid."""
    if request.output_mode == "model-view":
        return model_view_film(request.image, result.followup, result.frame)
    return composite_change(request.image, result.source_reconstruction, result.followup, result.frame,
                            list(request.points), request.sigma_ratio, request.edit_region, smoothing_px,
                            request.progression_text)
