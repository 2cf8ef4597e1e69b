"""The engine interface every generator implements, and the result it returns (the request: method/request.py).

Engine.generate is the one boundary: it validates the request, lets the engine make its model-view rows
(`_generate`), then turns them into a film (legend_demo/method/composite.py): by default only the change, composited
onto the prior at its own resolution inside the edit region W; in "model-view" mode the raw engine output.
"""
from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..method.composite import Film, composite_change, drawing_warnings, model_view_film
from ..core.errors import GenerationCancelled, GenerationError  # noqa: F401 - GenerationCancelled: engines' public name
from ..core.geometry import SquareFrame
from ..grounding.orientation import check_frontal_chest
from ..method.request import (DEFAULT_SOURCE_TEXT, SIGMA_RATIO_RANGE, GenerationRequest,  # noqa: F401 - re-exported
                              ProgressFn, as_loaded_image)
from ..method.metrics import LayerAttention
from ..core.points import LesionPoint
from .provenance import Provenance


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
    provenance: Provenance
    engine: str
    checkpoint: str
    film: Film | None = None  # set by Engine.generate — SYNTHETIC

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's report.json, the API's and the UI's report): plain numbers and lists only."""
        return plain_json({
            "synthetic": True,
            "notice": "Synthetic image generated for research use; not for diagnosis.",
            "engine": self.engine,
            "checkpoint": self.checkpoint,
            "points": [p.to_dict() for p in self.points],
            "sigma_ratio": self.provenance.sigma_ratio,
            "bias_strength": self.provenance.bias_strength,
            "seed": self.provenance.seed,
            "layers": [layer.metrics() for layer in self.layers],
            "output": self.film.params if self.film is not None else None,
            "timings_s": self.timings_s,
            "provenance": self.provenance.to_dict(),
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
        result.provenance.output = result.film.params
        result.provenance.warnings = warnings + drawing_warnings(result.film.params)
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

    def _result(self, request: GenerationRequest, *, followup: np.ndarray, source: np.ndarray, prior: np.ndarray,
                prior_map: np.ndarray, frame: SquareFrame, layers: list[LayerAttention], timings: dict[str, float],
                provenance: Provenance) -> GenerationResult:
        """The model-view rows, maps, timings and provenance of `_generate`, as this engine's result."""
        return GenerationResult(followup=followup, source_reconstruction=source, prior_image=prior, prior_map=prior_map,
                                frame=frame, points=list(request.points), layers=layers, timings_s=timings,
                                provenance=provenance, engine=self.name, checkpoint=self.checkpoint)

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
