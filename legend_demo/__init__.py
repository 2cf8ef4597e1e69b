"""LeGend demo: longitudinal chest X-ray follow-up generation with Gaussian-Biased Causal Attention (GBCA).

Research software: it makes synthetic images. It is not a diagnostic device.
Public names are imported lazily so `import legend_demo` stays fast and model-free.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "LesionPoint": "legend_demo.points",
    "ImageInputError": "legend_demo.errors",
    "EngineUnavailableError": "legend_demo.errors",
    "GenerationError": "legend_demo.errors",
    "SquareFrame": "legend_demo.geometry",
    "load_image": "legend_demo.image_io",
    "LoadedImage": "legend_demo.image_io",
    "save_synthetic_png": "legend_demo.export",
    "save_synthetic_dicom": "legend_demo.export",
    "gaussian_prior": "legend_demo.prior",
    "lesion_region": "legend_demo.prior",
    "cbi": "legend_demo.metrics",
    "ear": "legend_demo.metrics",
    "attn_iou": "legend_demo.metrics",
    "predict_points": "legend_demo.grounding",
    "GenerationRequest": "legend_demo.engines.base",
    "GenerationResult": "legend_demo.engines.base",
    "load_engine": "legend_demo.engines.registry",
    "available_engines": "legend_demo.engines.registry",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'legend_demo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
