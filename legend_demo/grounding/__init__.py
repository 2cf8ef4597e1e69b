"""Lesion-point grounding: progression text → lesion points on the prior image (DESIGN step 2; thesis §4.2.2, §4.6).

`predict_points(image, text, grounder="rules" | "vlm")` returns LesionPoints in the pixels of the image given.
"rules" is the deterministic embedded default; "vlm" asks Qwen2.5-VL-7B-Instruct and falls back to the rules,
with a warning, whenever it cannot give a valid answer (but fails at once when no weights are configured).

`ground` (locate.py) is the one entry point; the grounders are listed in registry.py. Public names are imported
lazily, so importing a submodule (the registry, orientation checks) does not load the grounders.
"""
from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "GROUNDERS": "registry",
    "GroundingResult": "result",
    "GroundingWarning": "locate",
    "LateralViewError": "orientation",
    "MAX_TEXT_CHARS": "limits",
    "check_frontal_chest": "orientation",
    "check_request": "limits",
    "check_text": "limits",
    "ground": "locate",
    "ground_with_rules": "rules_grounder",
    "patient_sides": "orientation",
    "predict_points": "locate",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'legend_demo.grounding' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
