"""The lesion-point editor: a gradio 6 `gr.HTML` component on the film viewer (viewer.py, static/point_editor.js).

Shows the prior film (12-bit, window/level, zoom/pan, invert, L/R markers) with numbered lesion points, the
Gaussian prior overlay and the dashed edit-region outline (each can be hidden). Click the film to add a point,
drag a point to move it, double-click it or press its ✕ to delete it; each point's finding, change, zone and
confidence are shown and editable in the list beside the film; undo/redo and "reset to found points"; keyboard
shortcuts act only while the editor has the focus, never in a text box.

Its value travels both ways and never holds film pixels or window/level; points are in ORIGINAL image pixels:

    {"width": W, "height": H, "points": [{"x", "y", "confidence", "label"}, ...],
     "found": the grounder's points (for "reset"), "for_text": the description they were found for (None: placed
     by hand), "rev": changes whenever Python replaces the points, "origin": "grounder: rules" / "example" / "",
     "overlay": {"prior": data URL, "region": data URL} (drawn here; the browser does not send it back)}

The film itself is the component's `film` property ({"film": viewer payload, "markers", "presets"}), sent once
per upload. The overlay is computed in Python (`prior_overlay`, with `legend_demo.method.prior.gaussian_prior`) on the
generator's token grid and mapped back through the square frame, so it shows what the model is given.
A point label reads "finding, change (zone)" (legend_demo.ui.point_labels).
"""
from __future__ import annotations

import math
import uuid
from typing import Any, Iterable

import cv2
import gradio as gr
import numpy as np

from ..method.composite import film_sigma_px
from ..method.edit_region import EditRegion, region_weights
from ..core.overlay import heat_rgba
from ..core.geometry import FrameMode, SquareFrame
from ..core.points import LesionPoint, as_points, check_inside, whole_number
from ..method.prior import gaussian_prior
from .viewer import film_payload, png_data_url, side_markers, static_text, window_presets

OVERLAY_MAX_SIDE = 256
REGION_MAX_SIDE = 768  # the dashed outline is drawn finer than the smooth prior
MODEL_SIDE = 256
TOKEN_GRID = (16, 16)  # FLUX at 256²: 32×32 latents in 2×2 patches


class PointEditor(gr.HTML):
    """Interactive lesion-point editor over a film (value documented in the module docstring)."""

    def __init__(self, value: dict | None = None, **kwargs: Any):
        kwargs.setdefault("film", None)
        super().__init__(
            value=value,
            html_template="<div class='lv-host' tabindex='0'></div>",  # the script draws inside; never re-rendered
            css_template=static_text("viewer.css") + static_text("point_editor.css"),
            js_on_load=static_text("viewer.js") + "\n" + static_text("point_editor.js"),
            apply_default_css=False,  # the viewer's own compact styles, not the page's prose styles
            **kwargs,
        )

    def api_info(self) -> dict[str, Any]:
        point = {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "confidence": {"type": "integer"}, "label": {"type": "string"}},
        }
        return {
            "type": "object",
            "properties": {
                "width": {"type": "integer"}, "height": {"type": "integer"},
                "points": {"type": "array", "items": point}, "found": {"type": "array", "items": point},
                "for_text": {"type": ["string", "null"]}, "rev": {"type": "string"}, "origin": {"type": "string"},
            },
        }


def film_props(image) -> dict[str, Any]:
    """The editor's `film` property for a LoadedImage: 12-bit pixels, side markers, window presets."""
    return {"film": film_payload(image.array), "markers": side_markers(image.dicom_info),
            "presets": window_presets(image.array, image.dicom_info)}


def points_stale(value: Any, text: str) -> bool:
    """True when the editor's points were found for another description than `text` (whitespace aside)."""
    if not isinstance(value, dict) or not value.get("points") or value.get("for_text") is None:
        return False
    return normalise_text(value["for_text"]) != normalise_text(text)


def normalise_text(text: Any) -> str:
    return " ".join(str(text or "").split())


def editor_value(
    array: np.ndarray, points: Iterable, sigma_ratio: float, region: EditRegion = EditRegion(), *,
    found: Iterable | None = None, for_text: str | None = None, origin: str = "",
    frame_mode: FrameMode = "pad", grid: tuple[int, int] = TOKEN_GRID, model_side: int = MODEL_SIDE,
) -> dict[str, Any]:
    """The editor's value for an (H, W) image, its points (original pixels), the points the grounder found (for
    "reset"), the description they were found for, and the overlay for `sigma_ratio` / `region`. Every call
    gives a new `rev`: the browser starts a fresh undo history."""
    height, width = array.shape[:2]
    value = {"width": width, "height": height, "points": [_point_dict(p) for p in as_points(points)],
             "found": [_point_dict(p) for p in as_points(found)] if found is not None else [],
             "for_text": normalise_text(for_text) if for_text is not None else None,
             "rev": uuid.uuid4().hex[:12], "origin": origin}
    value = with_overlay(value, sigma_ratio, region, frame_mode=frame_mode, grid=grid, model_side=model_side)
    value["overlay"]["anatomy"] = anatomy_overlay(array)
    return value


def anatomy_overlay(array: np.ndarray, max_side: int = REGION_MAX_SIDE) -> str:
    """The film's anatomy (issue 19: lung fields green, heart red, hemidiaphragm line orange, chest wall yellow) as
    an RGBA PNG data URL over the whole film ('' when no anatomy was found). The browser keeps it until the next
    film; the ANATOMY button (A) shows or hides it."""
    from types import SimpleNamespace

    from ..method.film_anatomy import film_anatomy

    film = np.asarray(array, dtype=np.float32)
    if film.ndim != 2:
        return ""
    anatomy = film_anatomy(SimpleNamespace(array=film, original_size=(film.shape[1], film.shape[0]), dicom_info={}))
    if not anatomy.found:
        return ""
    out_h, out_w = _fit_shape((film.shape[1], film.shape[0]), max_side)
    rgba = np.zeros((out_h, out_w, 4), np.uint8)
    colours = ((anatomy.lungs[0], (80, 220, 120)), (anatomy.lungs[1], (80, 220, 120)), (anatomy.heart, (235, 90, 90)),
               (np.maximum(anatomy.thorax, anatomy.chest_wall), (235, 210, 80)))
    for mask, colour in colours:
        inside = cv2.resize((mask > 0.5).astype(np.uint8), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        rgba[edge] = (*colour, 220)
    w, _ = anatomy.grid_size
    line = np.array([[x * out_w / w, (anatomy.diaphragm[x] + 0.5) * out_h / anatomy.grid_size[1]]
                     for x in range(w)], np.int32)
    cv2.polylines(rgba, [line], False, (255, 150, 40, 235), max(1, out_w // 400))
    return png_data_url(rgba)


def with_overlay(
    value: dict[str, Any], sigma_ratio: float, region: EditRegion = EditRegion(), *, frame_mode: FrameMode = "pad",
    grid: tuple[int, int] = TOKEN_GRID, model_side: int = MODEL_SIDE,
) -> dict[str, Any]:
    """A copy of `value` with its overlay recomputed: {"prior": the Gaussian prior for `sigma_ratio` (RGBA heat),
    "region": the dashed outline of the edit region (where a composite may differ from the film) for
    `region`}, both as PNG data URLs over the whole film ("" without points)."""
    points = editor_points(value)
    size = (int(value["width"]), int(value["height"]))
    overlay = {"prior": "", "region": ""}
    if points:
        prior = prior_overlay(points, size, sigma_ratio, frame_mode=frame_mode, grid=grid, model_side=model_side)
        overlay["prior"] = png_data_url(heat_rgba(prior))
        overlay["region"] = png_data_url(outline_rgba(region_outline(points, size, sigma_ratio, region,
                                                                     _fit_shape(size, REGION_MAX_SIDE), frame_mode)))
    return {**value, "points": [_point_dict(p) for p in points], "overlay": overlay}


def outline_rgba(outline: np.ndarray) -> np.ndarray:
    """(h, w) bool outline → (h, w, 4) uint8: white dashes on transparent."""
    rgba = np.zeros((*outline.shape, 4), np.uint8)
    rgba[outline] = (255, 255, 255, 235)
    return rgba


def region_outline(points: list[LesionPoint], original_size: tuple[int, int], sigma_ratio: float, region: EditRegion,
                   shape: tuple[int, int], frame_mode: FrameMode = "pad") -> np.ndarray:
    """(h_d, w_d) bool: the edge of the edit region W (its outer limit, dashed) at resolution `shape`."""
    width, height = original_size
    factor = shape[1] / width  # overlay pixels per original pixel
    frame = SquareFrame.fit(original_size, MODEL_SIDE, frame_mode)
    scaled = [LesionPoint(p.x * factor, p.y * factor) for p in points]
    weights = region_weights(scaled, (0, 0, shape[1], shape[0]), film_sigma_px(frame, sigma_ratio) * factor, region.scale)
    return dashed_edge((weights > 0).astype(np.uint8))


def dashed_edge(inside: np.ndarray) -> np.ndarray:
    """(h, w) bool: the dashed edge of an (h, w) uint8 mask (dashes about 1/96 of the width long)."""
    edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    yy, xx = np.indices(edge.shape)
    dash = max(3, edge.shape[1] // 96)
    return edge & (((xx + yy) // dash) % 2 == 0)


def film_region_outline(mask: np.ndarray, max_side: int = REGION_MAX_SIDE) -> str:
    """The outline of a film's edit region (Film.region_mask(), (H, W)) as an RGBA PNG data URL ('' when empty)."""
    if not (mask > 0).any():
        return ""
    height, width = mask.shape
    out_h, out_w = _fit_shape((width, height), max_side)
    inside = cv2.resize((mask > 0).astype(np.uint8), (out_w, out_h), interpolation=cv2.INTER_NEAREST)
    return png_data_url(outline_rgba(dashed_edge(inside)))


def _fit_shape(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(h, w) of an image of size (W, H) shrunk to at most max_side on its long side."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def editor_points(value: Any) -> list[LesionPoint]:
    """Points of an editor value, in original pixels; [] for an empty editor.

    A point outside the image raises ValueError (as /generate does) instead of being moved to the border.
    """
    if not isinstance(value, dict) or not value.get("width"):
        return []
    size = (whole_number("editor width", value["width"]), whole_number("editor height", value.get("height")))
    points = as_points(value.get("points") or [])
    check_inside(points, size)
    return points


def prior_overlay(
    points: list[LesionPoint], original_size: tuple[int, int], sigma_ratio: float, *,
    frame_mode: FrameMode = "pad", grid: tuple[int, int] = TOKEN_GRID, model_side: int = MODEL_SIDE,
) -> np.ndarray:
    """The model's Gaussian prior R (eq. 5.5) drawn over the original image: (h_d, w_d) float32 in [0, 1]."""
    frame = SquareFrame.fit(original_size, model_side, frame_mode)
    inside = [p for p in frame.points_to_model(points) if 0 <= p.x < model_side and 0 <= p.y < model_side]
    prior = gaussian_prior(inside, (model_side, model_side), grid, sigma_ratio)  # (h, w) token grid
    prior_px = cv2.resize(prior, (model_side, model_side), interpolation=cv2.INTER_LINEAR)  # (side, side)
    width, height = original_size
    scale = min(1.0, OVERLAY_MAX_SIDE / max(width, height))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    xs = (np.arange(out_w, dtype=np.float32) + 0.5) / scale  # original pixel of each output column
    ys = (np.arange(out_h, dtype=np.float32) + 0.5) / scale
    map_x = np.broadcast_to((xs + frame.offset_x) * frame.scale, (out_h, out_w)).astype(np.float32)
    map_y = np.broadcast_to(((ys + frame.offset_y) * frame.scale)[:, None], (out_h, out_w)).astype(np.float32)
    return cv2.remap(prior_px, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)  # (out_h, out_w)



def _point_dict(point: LesionPoint) -> dict[str, Any]:
    return {"x": _down1(point.x), "y": _down1(point.y), "confidence": int(point.confidence), "label": point.label}


def _down1(value: float) -> float:
    """Rounded down to 0.1 px, so a point inside the image (x < W) stays inside; a value already on the 0.1 grid
    (2.3, whose ×10 is 22.999…) is kept, so the browser and Python agree on an unchanged point."""
    value = float(value)
    down = math.floor(round(value * 10, 6)) / 10
    return down if down <= value else round(down - 0.1, 1)
