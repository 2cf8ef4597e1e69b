"""The follow-up as a film: only the engine's change, added to the patient's own film at its own resolution.

follow-up = prior + resample(edit − source) · W  (display units), written back in the film's stored units.

- edit, source: the engine's edit and source rows at the square model view; their difference is the change the
  engine drew (reconstruction error common to both rows cancels).
- resample: SquareFrame.sample_model_view, the exact inverse of the framing (pad/crop/resize), evaluated only
  inside W's bounding box.
- W: legend_demo.edit_region around the lesion points (same σ ratio as the Gaussian prior).
Outside W the output is the prior's stored pixels, untouched. A "model view" film (for researchers reproducing
the thesis) is instead the raw edit row resampled onto the whole film grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .edit_region import EditRegion, region_box, region_weights
from .geometry import SquareFrame
from .points import LesionPoint

OutputMode = Literal["composite", "model-view"]
OUTPUT_MODES = ("composite", "model-view")


@dataclass(eq=False)
class Film:
    """A SYNTHETIC follow-up on the prior film's own pixel grid.

    display: (H, W) float32 in [0, 1], shown like the prior; stored: (H, W) in the prior's stored dtype and units
    (None when the prior had no integer stored values); box/weights: W's bounding box (x0, y0, x1, y1) on the
    film and W inside it (None in model-view mode or without points).
    """

    display: np.ndarray
    stored: np.ndarray | None
    mode: OutputMode
    box: tuple[int, int, int, int] | None = None
    weights: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.display.shape[1], self.display.shape[0]

    def region_mask(self) -> np.ndarray:
        """W on the whole film grid (H, W) float32 (zeros in model-view mode)."""
        mask = np.zeros(self.display.shape, dtype=np.float32)
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            mask[y0:y1, x0:x1] = self.weights
        return mask


def film_sigma_px(frame: SquareFrame, sigma_ratio: float) -> float:
    """The Gaussian prior's σ in film pixels: ratio·min(h, w) cells = ratio·side model px = ratio·square film px."""
    return sigma_ratio * frame.square


def composite_change(
    prior,
    source_view: np.ndarray,
    edit_view: np.ndarray,
    frame: SquareFrame,
    points: list[LesionPoint],
    sigma_ratio: float,
    region: EditRegion,
    smoothing_px: float = 0.0,
) -> Film:
    """Add (edit − source)·W to the prior film (a LoadedImage) inside W; the prior elsewhere, bit for bit.

    smoothing_px > 0 low-passes the change at the model view first (a Gaussian of that σ in model pixels), for
    engines whose per-token output leaves block edges in the change (Engine.change_smoothing_px).
    """
    if source_view.shape != edit_view.shape:
        raise ValueError(f"source row {source_view.shape} and edit row {edit_view.shape} differ in shape")
    delta = model_view_change(source_view, edit_view, smoothing_px)  # (side, side)
    display = np.array(prior.array, dtype=np.float32, copy=True)  # (H, W)
    stored = None if prior.stored is None else prior.stored.copy()
    sigma_px = film_sigma_px(frame, sigma_ratio)
    params = {"mode": "composite", "sigma_ratio": sigma_ratio, "sigma_film_px": round(sigma_px, 2),
              **region.to_dict(), "change_smoothing_model_px": smoothing_px}
    box = region_box(points, prior.size, sigma_px, region.scale)
    if box is None:
        return Film(display, stored, "composite", params={**params, "note": "no lesion points: the follow-up is the prior"})
    weights = region_weights(points, box, sigma_px, region.scale)  # (h_b, w_b)
    change = frame.sample_model_view(delta, box) * weights  # (h_b, w_b) display units
    x0, y0, x1, y1 = box
    before = display[y0:y1, x0:x1]  # a view: written in place below
    after = np.clip(before + change, 0.0, 1.0)
    if stored is None:
        before[...] = after
    else:
        _write_stored(prior, stored[y0:y1, x0:x1], before, after)
    return Film(display, stored, "composite", box, weights, params)


def model_view_change(source_view: np.ndarray, edit_view: np.ndarray, smoothing_px: float = 0.0) -> np.ndarray:
    """edit − source at the model view, low-passed by a Gaussian of σ = smoothing_px model pixels when > 0."""
    if not (smoothing_px >= 0 and np.isfinite(smoothing_px)):
        raise ValueError(f"smoothing_px={smoothing_px} must be a finite number ≥ 0")
    delta = np.asarray(edit_view, dtype=np.float32) - np.asarray(source_view, dtype=np.float32)  # (side, side)
    if smoothing_px == 0:
        return delta
    import cv2

    return cv2.GaussianBlur(delta, (0, 0), smoothing_px, borderType=cv2.BORDER_REPLICATE)


def model_view_film(prior, edit_view: np.ndarray, frame: SquareFrame) -> Film:
    """The raw edit row resampled onto the whole film grid (no compositing), in display and stored units."""
    width, height = prior.size
    display = np.clip(frame.sample_model_view(edit_view, (0, 0, width, height)), 0.0, 1.0).astype(np.float32)
    stored = None
    if prior.stored is not None:
        stored = prior.intensity_map().to_stored(display, prior.stored.dtype)
    return Film(display, stored, "model-view", params={"mode": "model-view", "note": "raw engine output, upsampled"})


def _write_stored(prior, stored_box: np.ndarray, display_box: np.ndarray, after: np.ndarray) -> None:
    """Write changes of at least half a display step into the stored box, then show them as the film would."""
    changed = np.abs(after - display_box) >= 0.5 / float((1 << min(prior.bit_depth, 16)) - 1)  # (h_b, w_b)
    if not changed.any():
        return
    intensity = prior.intensity_map()
    stored_box[changed] = intensity.to_stored(after[changed], stored_box.dtype)
    display_box[changed] = intensity.to_display(stored_box[changed])
