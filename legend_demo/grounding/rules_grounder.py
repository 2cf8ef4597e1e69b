"""The rules grounder (the default; CPU, deterministic): the thesis §4.6 rules (rules.py) placed on this film's lungs.

The film's anatomy is found once per film (film_anatomy, shared with the composite); without fitted lung fields the
points go into a thorax estimated from intensity profiles, or to the coarse centres, at confidence 3 with a warning.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..method.film_anatomy import FilmAnatomy, build_anatomy, fallback_fields, film_anatomy
from .image_input import GroundingImage
from .lung_fields import LungFields, estimate_lung_fields
from .orientation import NOT_A_CHEST, Orientation
from .postprocess import finish, rescale
from .result import GroundingResult
from .rules import rule_points

LABEL = "Rules grounder"


def availability() -> tuple[bool, str]:
    return True, "deterministic, CPU: the thesis's rules on the film's lung fields"


def require() -> None:
    """Nothing to install: the rules grounder always runs."""


def ground_picture(picture: GroundingImage, text: str, film: Any = None) -> GroundingResult:
    """Points for `text` on `picture` (standard display); the film's anatomy is built once per loaded film."""
    anatomy = film_anatomy(film) if _is_film(film) else None  # once per film, shared with the composite
    return ground_with_rules(picture, text, anatomy=anatomy)


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


def _fields_summary(fields: LungFields, picture: GroundingImage) -> dict[str, Any]:
    """Where the lung fields came from, with the landmarks in the picture's original pixels."""
    sx = picture.original_size[0] / picture.array_size[0]
    sy = picture.original_size[1] / picture.array_size[1]
    landmarks = {k: (round((x + 0.5) * sx - 0.5, 1), round((y + 0.5) * sy - 0.5, 1))
                 for k, (x, y) in fields.landmarks.items()}
    return {"source": fields.source, "method": fields.method, "landmarks": landmarks}


def _is_film(image: Any) -> bool:
    """A loaded film object the anatomy can be kept on (a LoadedImage or alike), not a path or a bare array."""
    return hasattr(image, "array") and hasattr(image, "original_size") and hasattr(image, "__dict__")
