"""The lesion-point editor: a gradio 6 `gr.HTML` component with its own JavaScript.

Shows the radiograph with its lesion points (confidence in each dot) and the Gaussian prior overlay.
Drag a point to move it, click the image to add one, double-click a point or press its ✕ to delete it.
Its value (a dict) travels both ways; points are always in ORIGINAL image pixels:

    {"image": data-URL, "overlay": data-URL or "", "width": W, "height": H,
     "points": [{"x": float, "y": float, "confidence": int, "label": str}, ...]}

The overlay is computed in Python (`prior_overlay`, with `legend_demo.prior.gaussian_prior`) on the
generator's token grid and mapped back through the square frame, so it shows what the model is given.
"""
from __future__ import annotations

import base64
import math
from typing import Any, Iterable

import cv2
import gradio as gr
import numpy as np

from ..composite import film_sigma_px
from ..edit_region import region_weights
from ..geometry import FrameMode, SquareFrame
from ..points import LesionPoint, as_points, check_inside, whole_number
from ..prior import gaussian_prior

DISPLAY_MAX_SIDE = 512
OVERLAY_MAX_SIDE = 256
MODEL_SIDE = 256
TOKEN_GRID = (16, 16)  # FLUX at 256²: 32×32 latents in 2×2 patches

HTML_TEMPLATE = r"""
${(() => {
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const v = (value && typeof value === 'object' && value.image) ? value : null;
  if (!v) {
    return `<div class="pe-empty">Upload a radiograph or pick a synthetic example, then press <b>Find lesions</b> or click the image to place points.</div>`;
  }
  const pts = Array.isArray(v.points) ? v.points : [];
  const dots = pts.map((p, i) => `<div class="pe-pt conf${esc(p.confidence)}" data-i="${i}" style="left:${100 * p.x / v.width}%;top:${100 * p.y / v.height}%" title="point ${i + 1}: x=${Math.round(p.x)}, y=${Math.round(p.y)}, confidence ${esc(p.confidence)} (drag to move, double-click to delete)"><span>${esc(p.confidence)}</span></div>`).join('');
  const rows = pts.map((p, i) => `<li>#${i + 1} · x=${Math.round(p.x)}, y=${Math.round(p.y)} · confidence ${esc(p.confidence)}${p.label ? ' · ' + esc(p.label) : ''} <button type="button" class="pe-del" data-i="${i}" aria-label="delete point ${i + 1}">✕</button></li>`).join('');
  const overlay = v.overlay ? `<img class="pe-ov" src="${v.overlay}" alt="Gaussian prior" draggable="false"/>` : '';
  return `<div class="pe-wrap">
    <div class="pe-stage" style="aspect-ratio:${v.width} / ${v.height}">
      <img class="pe-img" src="${v.image}" alt="radiograph (points in its pixels)" draggable="false"/>${overlay}${dots}
    </div>
    <div class="pe-side">
      <div class="pe-size">${v.width} × ${v.height} px · ${pts.length} point${pts.length === 1 ? '' : 's'}</div>
      <ol class="pe-list">${rows}</ol>
      <div class="pe-help">Drag a point to move it · click the image to add one · double-click a point or press ✕ to delete it.</div>
    </div>
  </div>`;
})()}
"""

CSS_TEMPLATE = r"""
.pe-wrap { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
.pe-stage { position: relative; width: min(100%, 480px); background: #000; cursor: crosshair; user-select: none; touch-action: none; }
.pe-img, .pe-ov { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.pe-ov { opacity: 0.55; image-rendering: auto; }
.pe-pt { position: absolute; width: 22px; height: 22px; margin: -11px 0 0 -11px; border-radius: 50%;
         border: 2px solid #fff; background: rgba(220, 40, 40, 0.85); cursor: grab; z-index: 2;
         display: flex; align-items: center; justify-content: center; box-shadow: 0 0 3px #000; }
.pe-pt.conf4 { background: rgba(230, 140, 20, 0.85); }
.pe-pt.conf3 { background: rgba(200, 200, 30, 0.85); }
.pe-pt span { color: #fff; font: bold 11px sans-serif; pointer-events: none; }
.pe-pt:active { cursor: grabbing; }
.pe-side { flex: 1; min-width: 180px; font-size: 0.9em; }
.pe-list { margin: 4px 0; padding-left: 1.2em; }
.pe-del { border: none; background: none; color: #c00; cursor: pointer; font-weight: bold; }
.pe-help, .pe-size { color: var(--body-text-color-subdued, #666); }
.pe-empty { padding: 24px; border: 1px dashed var(--border-color-primary, #ccc); border-radius: 8px; }
"""

JS_ON_LOAD = r"""
let drag = null;
let suppressClick = false;
const current = () => (props.value && typeof props.value === 'object' && props.value.image) ? props.value : null;
const round1 = (n) => Math.floor(n * 10) / 10;  // down, so a point at the far edge stays inside (x < W)
const toImage = (ev) => {
  const rect = element.querySelector('.pe-stage').getBoundingClientRect();
  const fx = Math.min(Math.max((ev.clientX - rect.left) / rect.width, 0), 0.9999);
  const fy = Math.min(Math.max((ev.clientY - rect.top) / rect.height, 0), 0.9999);
  const v = current();
  return { fx, fy, x: round1(fx * v.width), y: round1(fy * v.height) };
};
const commit = (points) => { props.value = Object.assign({}, current(), { points }); };
element.addEventListener('pointerdown', (ev) => {
  const dot = ev.target.closest('.pe-pt');
  if (!dot || !current()) return;
  ev.preventDefault();
  drag = { i: Number(dot.dataset.i), dot, pos: null };
  if (dot.setPointerCapture) dot.setPointerCapture(ev.pointerId);
});
element.addEventListener('pointermove', (ev) => {
  if (!drag) return;
  const p = toImage(ev);
  drag.dot.style.left = (100 * p.fx) + '%';
  drag.dot.style.top = (100 * p.fy) + '%';
  drag.pos = p;
});
const endDrag = () => {
  if (!drag) return;
  const d = drag;
  drag = null;
  if (!d.pos) return;
  suppressClick = true;
  setTimeout(() => { suppressClick = false; }, 0);
  commit(current().points.map((q, k) => k === d.i ? Object.assign({}, q, { x: d.pos.x, y: d.pos.y }) : q));
};
element.addEventListener('pointerup', endDrag);
element.addEventListener('pointercancel', endDrag);
element.addEventListener('click', (ev) => {
  const v = current();
  if (!v) return;
  const del = ev.target.closest('.pe-del');
  if (del) { commit(v.points.filter((_, k) => k !== Number(del.dataset.i))); return; }
  if (suppressClick || ev.target.closest('.pe-pt') || !ev.target.closest('.pe-stage')) return;
  const p = toImage(ev);
  commit([...(v.points || []), { x: p.x, y: p.y, confidence: 5, label: 'added by user' }]);
});
element.addEventListener('dblclick', (ev) => {
  const dot = ev.target.closest('.pe-pt');
  const v = current();
  if (!dot || !v) return;
  commit(v.points.filter((_, k) => k !== Number(dot.dataset.i)));
});
"""


class PointEditor(gr.HTML):
    """Interactive lesion-point editor over a radiograph (value documented in the module docstring)."""

    def __init__(self, value: dict | None = None, **kwargs: Any):
        super().__init__(
            value=value,
            html_template=HTML_TEMPLATE,
            css_template=CSS_TEMPLATE,
            js_on_load=JS_ON_LOAD,
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
                "image": {"type": "string"}, "overlay": {"type": "string"},
                "width": {"type": "integer"}, "height": {"type": "integer"},
                "points": {"type": "array", "items": point},
            },
        }


def editor_value(
    array: np.ndarray, points: Iterable, sigma_ratio: float, region_scale: float = 1.0, *,
    frame_mode: FrameMode = "pad", grid: tuple[int, int] = TOKEN_GRID, model_side: int = MODEL_SIDE,
) -> dict[str, Any]:
    """The editor's value for an (H, W) [0, 1] image, its points (original pixels) and the prior overlay."""
    height, width = array.shape
    value = {"image": png_data_url(_fit(array, DISPLAY_MAX_SIDE)), "width": width, "height": height,
             "points": [_point_dict(p) for p in as_points(points)], "overlay": ""}
    return with_overlay(value, sigma_ratio, region_scale, frame_mode=frame_mode, grid=grid, model_side=model_side)


def with_overlay(
    value: dict[str, Any], sigma_ratio: float, region_scale: float = 1.0, *, frame_mode: FrameMode = "pad",
    grid: tuple[int, int] = TOKEN_GRID, model_side: int = MODEL_SIDE,
) -> dict[str, Any]:
    """A copy of `value` with its overlay recomputed: the Gaussian prior for `sigma_ratio` and the edit region's
    outline (where a composite may differ from the film) for `region_scale`."""
    points = editor_points(value)
    size = (int(value["width"]), int(value["height"]))
    overlay = ""
    if points:
        prior = prior_overlay(points, size, sigma_ratio, frame_mode=frame_mode, grid=grid, model_side=model_side)
        rgba = heat_rgba(prior)
        outline = region_outline(points, size, sigma_ratio, region_scale, prior.shape, frame_mode)
        rgba[outline] = (255, 255, 255, 230)
        overlay = png_data_url(rgba)
    return {**value, "points": [_point_dict(p) for p in points], "overlay": overlay}


def region_outline(points: list[LesionPoint], original_size: tuple[int, int], sigma_ratio: float, region_scale: float,
                   shape: tuple[int, int], frame_mode: FrameMode = "pad") -> np.ndarray:
    """(h_d, w_d) bool: the edge of the edit region W (its outer limit, dashed) at the overlay's resolution."""
    width, height = original_size
    factor = shape[1] / width  # overlay pixels per original pixel
    frame = SquareFrame.fit(original_size, MODEL_SIDE, frame_mode)
    scaled = [LesionPoint(p.x * factor, p.y * factor) for p in points]
    weights = region_weights(scaled, (0, 0, shape[1], shape[0]), film_sigma_px(frame, sigma_ratio) * factor, region_scale)
    inside = (weights > 0).astype(np.uint8)
    edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    yy, xx = np.indices(shape)
    return edge & (((xx + yy) // 4) % 2 == 0)  # dashed


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


def heat_rgba(values: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1] → (h, w, 4) uint8 RGBA, JET colours, alpha proportional to the value."""
    scaled = (np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return np.dstack([rgb, scaled])


def png_data_url(image: np.ndarray) -> str:
    """Encode (H, W) float [0, 1] / uint8, or (H, W, 3|4) uint8 RGB(A), as a PNG data URL."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def _fit(array: np.ndarray, max_side: int) -> np.ndarray:
    height, width = array.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


def _point_dict(point: LesionPoint) -> dict[str, Any]:
    return {"x": _down1(point.x), "y": _down1(point.y), "confidence": int(point.confidence), "label": point.label}


def _down1(value: float) -> float:
    """Rounded down to 0.1 px, so a point inside the image (x < W) stays inside."""
    return math.floor(float(value) * 10) / 10
