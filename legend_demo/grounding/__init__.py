"""Lesion-point grounding: progression text → lesion points on the prior image (DESIGN step 2; thesis §4.2.2, §4.6).

`predict_points(image, text, grounder="rules" | "vlm")` returns LesionPoints in the pixels of the image given.
"rules" is the deterministic embedded default; "vlm" asks Qwen2.5-VL-7B-Instruct and falls back to the rules,
with a warning, whenever it cannot give a valid answer (but fails at once when no weights are configured).

Order of work in `ground`: the text limit, the grounder name and the VLM's weights are checked before the image
is touched; a lateral view is refused (LateralViewError); the film is put into standard display by its
PatientOrientation, grounded there, and the points are mapped back to the film's stored pixels.
"""
from __future__ import annotations

import warnings as _warnings
from dataclasses import replace
from typing import Any

from ..points import LesionPoint
from .image_input import GroundingImage, as_grounding_image
from .limits import MAX_TEXT_CHARS, check_request, check_text
from .film_anatomy import FilmAnatomy, build_anatomy, fallback_fields, film_anatomy
from .lung_fields import LungFields, estimate_lung_fields
from .orientation import (NOT_A_CHEST, LateralViewError, Orientation, check_frontal_chest, patient_sides,
                          read_orientation)
from .postprocess import finish, rescale
from .result import GroundingResult
from .rules import rule_points

GROUNDERS = ("rules", "vlm")

__all__ = ["GROUNDERS", "MAX_TEXT_CHARS", "GroundingResult", "GroundingWarning", "LateralViewError",
           "check_frontal_chest", "check_request", "check_text", "ground", "ground_with_rules", "patient_sides", "predict_points"]


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
    """Points, image size, the grounder that produced them, warnings, lung-field source and orientation."""
    check_request(text, grounder)
    picture = as_grounding_image(image)
    view_warnings = check_frontal_chest(picture.info)
    orientation, _ = read_orientation(picture.info)
    standard = picture.standard(orientation)
    if grounder == "vlm":
        from .vlm import ground_with_vlm

        result = ground_with_vlm(standard, text)
    else:
        anatomy = film_anatomy(image) if _is_film(image) else None  # once per film, shared with the composite
        result = ground_with_rules(standard, text, anatomy=anatomy)
    stored = picture.original_size
    points = [replace(p, x=x, y=y) for p in result.points for x, y in [orientation.to_stored(p.x, p.y, stored)]]
    fields = dict(result.lung_fields)
    if "landmarks" in fields:
        fields["landmarks"] = {k: [round(c, 1) for c in orientation.to_stored(*v, stored)]
                               for k, v in fields["landmarks"].items()}
    return GroundingResult(points, stored, result.grounder, view_warnings + result.warnings, fields,
                           orientation.source)


def ground_with_rules(picture: GroundingImage, text: str, fields: LungFields | None = None,
                      anatomy: FilmAnatomy | None = None) -> GroundingResult:
    """The rules grounder on an already coerced image in standard display (the VLM's fallback calls this too).

    `anatomy`: the film's anatomy when already known (film_anatomy; its pixels are the picture's); else it is built
    here from `fields` (or fitted lung fields). Without fitted lung fields the points are placed in a thorax
    estimated from intensity profiles when there is one (else at the coarse centres), capped at confidence 3,
    and the warning says so.
    """
    if anatomy is None or anatomy.fields is None:
        fields = fields or estimate_lung_fields(picture.array)
        anatomy = replace(build_anatomy(picture.array, fields, picture.array_size, Orientation()), fields=fields)
    fields = anatomy.fields
    warnings = []
    if fields.source == "coarse":
        fields, where = fallback_fields(fields, anatomy)
        warnings.append(f"{NOT_A_CHEST}: no lung fields found on this film ({fields.reason}). The points are "
                        f"approximate — {where} — and their confidence is lowered to {FALLBACK_CONFIDENCE}; check "
                        "and move them before generating")
    candidates, text_warnings = rule_points(text, fields, anatomy)
    if fields.source == "coarse":
        candidates = [replace(p, confidence=min(p.confidence, FALLBACK_CONFIDENCE),
                              label=_approximate(p.label)) for p in candidates]
    points = finish(rescale(candidates, picture.array_size, picture.original_size), picture.original_size)
    warnings += text_warnings
    if text.strip() and not points:
        warnings.append("no localisable change in the description: no points")
    summary = {**_fields_summary(fields, picture), "anatomy": anatomy.describe()}
    return GroundingResult(points, picture.original_size, "rules", warnings, summary)


FALLBACK_CONFIDENCE = 3  # points placed without fitted lung fields


def _approximate(label: str) -> str:
    suffix = " [approximate: lungs not found]"
    return label if label.endswith(suffix) else (label + suffix)[-200:]


def _is_film(image: Any) -> bool:
    """A loaded film object the anatomy can be kept on (a LoadedImage or alike), not a path or a bare array."""
    return hasattr(image, "array") and hasattr(image, "original_size") and hasattr(image, "__dict__")


def _fields_summary(fields: LungFields, picture: GroundingImage) -> dict[str, Any]:
    """Where the lung fields came from, with the landmarks in the picture's original pixels."""
    sx = picture.original_size[0] / picture.array_size[0]
    sy = picture.original_size[1] / picture.array_size[1]
    landmarks = {k: (round((x + 0.5) * sx - 0.5, 1), round((y + 0.5) * sy - 0.5, 1))
                 for k, (x, y) in fields.landmarks.items()}
    return {"source": fields.source, "method": fields.method, "landmarks": landmarks}
