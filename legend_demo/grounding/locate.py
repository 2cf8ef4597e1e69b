"""Text → lesion points on a film: the one entry point every caller uses (`ground`, `predict_points`).

Order of work in `ground`: the text limit, the grounder name and whether it can run (the VLM's weights) are checked
before the image is touched; a lateral view is refused (LateralViewError); the film is put into standard display by
its PatientOrientation, grounded there by the grounder the registry names, and the points are mapped back to the
film's stored pixels.
"""
from __future__ import annotations

import warnings as _warnings
from dataclasses import replace
from typing import Any

from ..core.points import LesionPoint
from .image_input import as_grounding_image
from .limits import check_request
from .orientation import check_frontal_chest, read_orientation
from .registry import grounder_module
from .result import GroundingResult


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
    result = grounder_module(grounder).ground_picture(standard, text, image)
    stored = picture.original_size
    points = [replace(p, x=x, y=y) for p in result.points for x, y in [orientation.to_stored(p.x, p.y, stored)]]
    fields = dict(result.lung_fields)
    if "landmarks" in fields:
        fields["landmarks"] = {k: [round(c, 1) for c in orientation.to_stored(*v, stored)]
                               for k, v in fields["landmarks"].items()}
    return GroundingResult(points, stored, result.grounder, view_warnings + result.warnings, fields,
                           orientation.source)
