"""The film viewer of the page: window/level, presets, zoom/pan, invert, reset, L/R side markers, prior and
follow-up linked side by side or flickered in place (the same for GBCA on vs off). No library, no CDN: the
JavaScript is in static/viewer.js and runs inside gradio 6 `gr.HTML` components (`js_on_load`).

Films travel to the browser as 12-bit samples (more than the 8 bits of a PNG, so window/level is meaningful on
16-bit films) at display resolution: `film_payload` → {"key", "w", "h", "bits", "data", "base"}, where `data` is
base64(zlib(uint16 little-endian residuals)) and a residual is the sample minus its left neighbour (the row's first
sample minus 0), or, when `base` names another film of the same size, minus that film's sample (a composite differs
from its prior only inside the edit region, so its residuals are mostly zero). A film sent against a base carries
only the box [x, y, w, h] where it differs (`box`; outside it the film is the base), so the browser inflates and
adds that box only. All arithmetic is modulo 2¹⁶.

A page that already has 8-bit grey PNGs (the reader study) can send them as they are (`png_payload`).

Window/level happens in the browser, on the displayed pixels only: nothing of it is sent to Python, and every
film Python receives or writes (editor points, generation, downloads) is untouched by it.
"""
from __future__ import annotations

import base64
import hashlib
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import gradio as gr
import numpy as np

STATIC = Path(__file__).with_name("static")
FILM_VIEW_MAX_SIDE = 1024  # films are sent at most this large on the long side (downloads keep full resolution)
FILM_VIEW_BITS = 12  # 4096 levels: a window 5 % of the range still spans ~200 levels
ZLIB_LEVEL = 6
WINDOW_PERCENTILES = (2.0, 98.0)  # a preset window spans these percentiles of its tissue's pixels
MIN_WINDOW = 0.02  # narrowest preset window (fraction of the display range)
BAND_WIDTH = 400  # label bands are drawn about as wide as a pane shows them (legible text)


def static_text(name: str) -> str:
    """A file of legend_demo/ui/static (the viewer's JavaScript and CSS)."""
    return _read_static(name)


@lru_cache(maxsize=None)
def _read_static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


# --- films -----------------------------------------------------------------------------------------------------


def display_film(array01: np.ndarray, max_side: int = FILM_VIEW_MAX_SIDE) -> np.ndarray:
    """(H, W) [0, 1] → at most max_side on the long side (area averaging), float32."""
    height, width = array01.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return np.asarray(array01, dtype=np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(np.asarray(array01, dtype=np.float32), size, interpolation=cv2.INTER_AREA)


def quantize(array01: np.ndarray, bits: int = FILM_VIEW_BITS) -> np.ndarray:
    """(h, w) [0, 1] → (h, w) uint16 samples 0 … 2^bits − 1 (values outside [0, 1] are a bug: refused)."""
    if not np.isfinite(array01).all() or array01.min() < -1e-6 or array01.max() > 1 + 1e-6:
        raise ValueError("a film for the viewer must hold finite values in [0, 1]")
    return np.round(np.clip(array01, 0.0, 1.0) * (2**bits - 1)).astype(np.uint16)


def film_payload(array01: np.ndarray, base: np.ndarray | None = None, base_key: str | None = None,
                 max_side: int = FILM_VIEW_MAX_SIDE, base_samples: np.ndarray | None = None) -> dict[str, Any]:
    """The viewer's copy of a film (module docstring); `base` (the same film size) with `base_key` sends only the
    difference from that film, which the browser must already have. `base_samples`: the base's quantized display
    samples when already at hand (skips recomputing them)."""
    samples = quantize(display_film(array01, max_side))  # (h, w)
    if base is not None:
        reference = base_samples if base_samples is not None else quantize(display_film(base, max_side))
        if reference.shape != samples.shape:
            raise ValueError(f"a film and its base differ in size: {samples.shape} vs {reference.shape}")
        if base_key is None:
            raise ValueError("a film sent as a difference needs the key of its base film")
    else:
        reference = np.zeros_like(samples)
        reference[:, 1:] = samples[:, :-1]
    residual = (samples.astype(np.int32) - reference.astype(np.int32)).astype(np.uint16)  # modulo 2^16
    box = _changed_box(residual) if base is not None else None  # [x, y, w, h]
    if box is not None:
        x, y, w, h = box
        residual = residual[y:y + h, x:x + w]
    data = zlib.compress(residual.astype("<u2").tobytes(), ZLIB_LEVEL)
    payload = {"key": film_key(samples), "w": int(samples.shape[1]), "h": int(samples.shape[0]),
               "bits": FILM_VIEW_BITS, "data": base64.b64encode(data).decode("ascii"),
               "base": base_key if base is not None else None}
    return payload | ({"box": box} if box is not None else {})


def _changed_box(residual: np.ndarray) -> list[int]:
    """[x, y, w, h] of the nonzero residuals (at least 1 × 1, at the top left when nothing changed)."""
    rows, cols = np.flatnonzero(residual.any(axis=1)), np.flatnonzero(residual.any(axis=0))
    if rows.size == 0:
        return [0, 0, 1, 1]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def png_payload(png: bytes) -> dict[str, Any]:
    """An 8-bit grey PNG as a viewer film ({"key", "png": data URL}), for a page that already makes metadata-free
    PNGs (the reader study's legend_demo.study.images.case_pngs): window/level then works on its 256 levels."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png_payload needs the bytes of a PNG image")
    return {"key": hashlib.sha1(png).hexdigest()[:16], "png": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def film_key(samples: np.ndarray) -> str:
    """A content key: equal films share it (the browser decodes each film once)."""
    digest = hashlib.sha1(samples.tobytes())
    digest.update(str(samples.shape).encode())
    return digest.hexdigest()[:16]


def decode_payload(payload: Mapping[str, Any], base: np.ndarray | None = None) -> np.ndarray:
    """Python twin of the browser's decoder (for tests): the (h, w) uint16 samples of a payload."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode(payload["data"])), dtype="<u2")
    if payload.get("base"):
        if base is None:
            raise ValueError("this payload is a difference: pass its base film's samples")
        x, y, w, h = payload.get("box") or [0, 0, payload["w"], payload["h"]]
        out = np.array(base, dtype=np.uint32)
        out[y:y + h, x:x + w] += raw.reshape(h, w)
        return (out % 65536).astype(np.uint16)
    residual = raw.reshape(payload["h"], payload["w"]).astype(np.uint32)
    return (np.cumsum(residual, axis=1) % 65536).astype(np.uint16)


# --- window presets ---------------------------------------------------------------------------------------------


def window_presets(array01: np.ndarray, dicom_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Window (centre, width) presets in display units ([0, 1] of the film as loaded):

    - default: the whole range, i.e. the film as the app shows it (its own DICOM window or full bit range);
    - lung: the 2nd–98th percentile of the lung fields' pixels (legend_demo.grounding lung fields);
    - mediastinum: the same percentiles of the mediastinal column between the lungs.
    Without two lung fields (not a chest film) lung/mediastinum are the lower / upper half of the film's
    histogram, and `source` says so."""
    small = display_film(array01, 256)
    lung, middle, source = _tissue_masks(small, dicom_info)
    return {"default": [0.5, 1.0], "lung": _window(small[lung]), "mediastinum": _window(small[middle]),
            "source": source}


def _tissue_masks(small: np.ndarray, dicom_info: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray, str]:
    from ..grounding.lung_fields import estimate_lung_fields
    from ..grounding.orientation import read_orientation

    orientation, _ = read_orientation(dicom_info)
    standard = orientation.to_standard(small)
    fields = estimate_lung_fields(standard)
    if fields.source == "image" and fields.labels is not None:
        height, width = standard.shape
        labels = cv2.resize(fields.labels, (width, height), interpolation=cv2.INTER_NEAREST)
        lung = labels > 0
        x0, x1 = sorted((fields.image_left.x1, fields.image_right.x0))
        y0 = min(fields.image_left.y0, fields.image_right.y0)
        y1 = max(fields.image_left.y1, fields.image_right.y1)
        middle = np.zeros_like(lung)
        middle[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        middle &= ~lung
        if lung.sum() >= 16 and middle.sum() >= 16:
            return _stored(orientation, lung), _stored(orientation, middle), "lung fields of this film"
    median = float(np.median(small))
    return small <= median, small >= median, "no lung fields found: lower / upper half of the film's histogram"


def _stored(orientation, mask_standard: np.ndarray) -> np.ndarray:
    """A mask in standard display → the stored film's layout (undo orientation.to_standard)."""
    out = mask_standard
    if orientation.flip_y:
        out = out[::-1, :]
    if orientation.flip_x:
        out = out[:, ::-1]
    return np.ascontiguousarray(out.T if orientation.transpose else out)


def _window(values: np.ndarray) -> list[float]:
    lo, hi = (float(v) for v in np.percentile(values, WINDOW_PERCENTILES))
    width = max(hi - lo, MIN_WINDOW)
    return [round((lo + hi) / 2, 4), round(width, 4)]


# --- side markers -----------------------------------------------------------------------------------------------


def side_markers(dicom_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """Which patient side each image edge shows, from PatientOrientation: {"left": "R", "right": "L", "top": "",
    "bottom": "", "assumed": bool, "note": "..."}; without tags standard display is assumed (and said)."""
    from ..grounding.orientation import patient_sides, read_orientation

    orientation, warnings = read_orientation(dicom_info)
    markers = {"left": "", "right": "", "top": "", "bottom": ""}
    for side, where in patient_sides(dicom_info or {}).items():
        markers[where.removeprefix("image ")] = "R" if side == "right" else "L"
    tagged = bool((dicom_info or {}).get("PatientOrientation")) and not warnings
    note = orientation.source if tagged else "no usable orientation tag: patient right assumed on the image left"
    return {**markers, "assumed": not tagged, "note": note}


# --- the results viewer -----------------------------------------------------------------------------------------


def band_url(lines: Sequence[str], width: int = BAND_WIDTH) -> str:
    """The export's label band (legend_demo.core.export.label_band) as a PNG data URL, shown below a pane's film."""
    from ..core.export import label_band

    return png_data_url(label_band(width, lines))


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


def film_entry(film_id: str, title: str, payload: dict[str, Any], band_lines: Sequence[str] = (),
               synthetic: bool = False) -> dict:
    """One film of a FilmViewer: id, pane title, pixels (film_payload), the label band shown below it (export's
    label_band; none without lines) and whether its title is marked as synthetic. A page that must not say which
    film is synthetic (a blinded reader study) gives neutral titles, no band lines and synthetic=False."""
    band = band_url(band_lines) if any(str(line).strip() for line in band_lines) else ""
    return {"id": film_id, "title": title, "film": payload, "band": band, "synthetic": bool(synthetic)}


def viewer_value(films: Sequence[dict], pairs: Sequence[Sequence[str]], *, markers: dict, presets: dict,
                 region: str = "", note: str = "") -> dict[str, Any]:
    """The results viewer's value: films (film_entry), pairs [(id A, id B, caption)], side markers, window presets,
    the edit region's outline (data URL, may be ''), a one-line note."""
    ids = {f["id"] for f in films}
    for a, b, _ in pairs:
        if a not in ids or b not in ids:
            raise ValueError(f"pair ({a}, {b}) names a film the viewer does not have")
    return {"films": list(films), "pairs": [list(p) for p in pairs], "markers": markers, "presets": presets,
            "region": region, "note": note}


class FilmViewer(gr.HTML):
    """Films side by side or flickered, linked window/level/zoom/pan (value: `viewer_value`, or None).

    Reusable on any page (the app's results, a reader study): build the value with film_payload / film_entry /
    viewer_value and return it from a handler; set the stage height with the CSS variable --lv-stage-h on the
    component's elem_id. It never sends anything back to Python."""

    def __init__(self, value: dict | None = None, **kwargs: Any):
        super().__init__(
            value=value,
            html_template="<div class='lv-host' tabindex='0'></div>",  # the script draws inside; never re-rendered
            css_template=static_text("viewer.css"),
            js_on_load=static_text("viewer.js") + "\n" + static_text("film_viewer.js"),
            apply_default_css=False,  # the viewer's own compact styles, not the page's prose styles
            **kwargs,
        )

    def api_info(self) -> dict[str, Any]:
        return {"type": "object", "description": "results viewer state (output only)"}
