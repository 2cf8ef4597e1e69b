"""Lesion-point grounding: progression text → lesion points on the prior image (DESIGN step 2; thesis §4.2.2, §4.6).

`predict_points(image, text, grounder="rules" | "vlm")` returns LesionPoints in the pixels of the image given.
"rules" is the deterministic embedded default; "vlm" asks Qwen2.5-VL-7B-Instruct and falls back to the rules,
with a warning, whenever it cannot give a valid answer.
"""
from __future__ import annotations

import warnings as _warnings
from typing import Any

from ..points import LesionPoint
from .image_input import GroundingImage, as_grounding_image
from .lung_fields import LungFields, estimate_lung_fields
from .postprocess import finish, rescale
from .result import GroundingResult
from .rules import rule_points

GROUNDERS = ("rules", "vlm")

__all__ = ["GROUNDERS", "GroundingResult", "GroundingWarning", "ground", "ground_with_rules", "predict_points"]


class GroundingWarning(UserWarning):
    """A grounder fell back (coarse lung centres, VLM → rules) or read the text only partly."""


def predict_points(image: Any, text: str, grounder: str = "rules") -> list[LesionPoint]:
    """Lesion points for `text` on `image` (LoadedImage, path, or H×W array), in that image's pixels.

    Warnings (fallbacks) are issued as GroundingWarning; use `ground` to receive them as a list.
    """
    result = ground(image, text, grounder)
    for message in result.warnings:
        _warnings.warn(message, GroundingWarning, stacklevel=2)
    return result.points


def ground(image: Any, text: str, grounder: str = "rules") -> GroundingResult:
    """Points, image size, the grounder that produced them, and warnings."""
    if grounder not in GROUNDERS:
        raise ValueError(f"grounder must be one of {GROUNDERS}, got {grounder!r}")
    if not isinstance(text, str):
        raise ValueError(f"the progression text must be a string, got {type(text).__name__}")
    picture = as_grounding_image(image)
    if grounder == "vlm":
        from .vlm import ground_with_vlm

        return ground_with_vlm(picture, text)
    return ground_with_rules(picture, text)


def ground_with_rules(picture: GroundingImage, text: str, fields: LungFields | None = None) -> GroundingResult:
    """The rules grounder on an already coerced image (the VLM's fallback calls this too)."""
    fields = fields or estimate_lung_fields(picture.array)
    warnings = []
    if fields.source == "coarse":
        warnings.append(f"lung fields not found ({fields.reason}); using the coarse centres "
                        "0.30W/0.70W × 0.20H/0.50H/0.80H")
    candidates, text_warnings = rule_points(text, fields)
    points = finish(rescale(candidates, picture.array_size, picture.original_size), picture.original_size)
    warnings += text_warnings
    if text.strip() and not points:
        warnings.append("no localisable change in the description: no points")
    return GroundingResult(points, picture.original_size, "rules", warnings)
