"""Provenance: how one result was made, as a typed record (the report's `provenance` block).

Every engine builds it the same way (`Provenance.of`): the header (engine, weights, fingerprints, how they were
loaded, package versions, time), the request's own values, the layers used, the model view and the frame — then
adds its own parameters (steps and σs for the diffusion engines, sampling options for the AR engine).
`Engine.generate` adds the film's output block and the warnings; `to_dict` gives the JSON the report carries.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..core.points import LesionPoint

if TYPE_CHECKING:
    from ..method.request import GenerationRequest
    from .base import Engine


@dataclass
class Provenance:
    """Engine, weights, packages and parameters of one result; the request's values are typed fields."""

    engine: str
    checkpoint: str  # public name, never a server path
    checkpoint_fingerprints: dict[str, Any]
    load: dict[str, Any]
    progression_text: str
    source_text: str
    points: list[LesionPoint]
    sigma_ratio: float
    bias_strength: float | None  # None: the trained s; 0: GBCA off
    bias_strength_mode: str  # "off", "fixed", "learned …" or "untrained … (init 0.01)"
    seed: int
    keep_region_blending: bool
    vital_layers: list[int]
    capture_layers: list[int]
    model_side: int
    token_grid: tuple[int, int]
    frame: dict[str, Any]
    engine_parameters: dict[str, Any] = field(default_factory=dict)  # this engine's own (steps, sampling, …)
    output: dict[str, Any] | None = None  # the film's block (mode, edit region, anatomy), set by Engine.generate
    warnings: list[str] = field(default_factory=list)  # set by Engine.generate
    created_utc: str = field(default_factory=lambda: utc_now())
    packages: dict[str, str] = field(default_factory=lambda: package_versions())
    synthetic: bool = True

    @classmethod
    def of(cls, engine: "Engine", request: "GenerationRequest", *, bias_strength_mode: str, vital_layers, capture_layers,
           frame, **engine_parameters: Any) -> "Provenance":
        """The one header every engine writes, the request's values, and `engine_parameters` (the engine's own)."""
        return cls(
            engine=engine.name, checkpoint=engine.checkpoint, checkpoint_fingerprints=engine.fingerprints,
            load=engine.load_options, progression_text=request.progression_text, source_text=request.source_text,
            points=list(request.points), sigma_ratio=request.sigma_ratio, bias_strength=request.bias_strength,
            bias_strength_mode=bias_strength_mode, seed=request.seed,
            keep_region_blending=request.edit_region.keep_blend, vital_layers=sorted(vital_layers),
            capture_layers=sorted(capture_layers), model_side=engine.model_side, token_grid=tuple(engine.token_grid),
            frame=frame.to_dict(), engine_parameters=engine_parameters,
        )

    @property
    def parameters(self) -> dict[str, Any]:
        """Every parameter of the generation in one flat dict (the report's `provenance.parameters`)."""
        values = {
            "progression_text": self.progression_text,
            "source_text": self.source_text,
            "points": [p.to_dict() for p in self.points],
            "sigma_ratio": self.sigma_ratio,
            "bias_strength": self.bias_strength,
            "bias_strength_mode": self.bias_strength_mode,
            "seed": self.seed,
            "vital_layers": self.vital_layers,
            "capture_layers": self.capture_layers,
            "keep_region_blending": self.keep_region_blending,
            "model_side": self.model_side,
            "token_grid": list(self.token_grid),
            "frame": self.frame,
            **self.engine_parameters,
        }
        if self.output is not None:
            values["output"] = self.output
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_utc": self.created_utc,
            "synthetic": self.synthetic,
            "engine": self.engine,
            "checkpoint": self.checkpoint,
            "checkpoint_fingerprints": self.checkpoint_fingerprints,
            "load": self.load,
            "packages": self.packages,
            "parameters": self.parameters,
            "warnings": list(self.warnings),
        }


def package_versions() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    return {
        "legend_demo": __version__,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
