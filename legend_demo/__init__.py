"""LeGend demo: longitudinal chest X-ray follow-up generation with Gaussian-Biased Causal Attention (GBCA).

Research software: it makes synthetic images. It is not a diagnostic device.
Public names are imported lazily so `import legend_demo` stays fast and model-free.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "LesionPoint": "legend_demo.core.points",
    "ImageInputError": "legend_demo.core.errors",
    "EngineUnavailableError": "legend_demo.core.errors",
    "GenerationError": "legend_demo.core.errors",
    "SquareFrame": "legend_demo.core.geometry",
    "load_image": "legend_demo.core.image_io",
    "LoadedImage": "legend_demo.core.image_io",
    "save_synthetic_png": "legend_demo.core.export",
    "save_synthetic_dicom": "legend_demo.core.export",
    "gaussian_prior": "legend_demo.method.prior",
    "lesion_region": "legend_demo.method.prior",
    "cbi": "legend_demo.method.metrics",
    "ear": "legend_demo.method.metrics",
    "attn_iou": "legend_demo.method.metrics",
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
