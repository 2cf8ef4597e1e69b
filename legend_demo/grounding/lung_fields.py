"""Lung fields of a frontal chest radiograph: the real-lung atlas fitted to the image (thesis §4.6: "visually
estimate lung fields"), or the thesis coarse centres when no chest is found.

`estimate_lung_fields` fits the atlas (lung_fit.py) and returns both lung boxes, a label image of the atlas
lung shapes warped into them, the apex / dome / costophrenic-angle landmarks, and where the fields came from.
The image is expected in standard display (patient right on the image left); orientation.py puts it there.
If the fit is not two plausible lungs it falls back to boxes whose zone thirds are centred at the coarse
centres (0.30W / 0.70W × 0.20H / 0.50H / 0.80H), with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .atlas import LANDMARK_NAMES, lung_atlas, mask_landmarks
from .lung_cores import Cores, complete_lungs, dark_cores
from .lung_fit import fill_flat_borders, fit_lungs

LABEL_SIDE = 160  # pixels of the longer side of the label image (zone centroids are taken there)
COARSE_X = (0.30, 0.70)  # image-left (patient right) and image-right (patient left) lung centres, fraction of W
COARSE_Y = (0.20, 0.50, 0.80)  # upper / middle / lower zone centres, fraction of H
PATIENT_SIDES = ("right", "left")  # in standard display: the image-left lung is the patient's right


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the analysed image: x0 ≤ x < x1, y0 ≤ y < y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True)
class LungFields:
    """Both lung boxes in image pixels; `labels` (1 = image-left lung, 2 = image-right lung) at label scale."""

    image_size: tuple[int, int]  # (W, H)
    image_left: Box  # the patient's RIGHT lung in standard display
    image_right: Box  # the patient's LEFT lung
    source: Literal["image", "coarse"]
    reason: str = ""  # why the coarse centres were used
    labels: np.ndarray | None = None  # (h, w) uint8 at label scale, or None for the coarse boxes
    scale: tuple[float, float] = (1.0, 1.0)  # label pixels per image pixel in x and y
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)  # "right apex" → (x, y) image px
    method: str = ""  # one line: where the fields came from

    def lung_for_side(self, patient_side: str) -> tuple[Box, int]:
        """Patient right → image-left lung (label 1); patient left → image-right lung (label 2)."""
        if patient_side == "right":
            return self.image_left, 1
        if patient_side == "left":
            return self.image_right, 2
        raise ValueError(f"patient side must be 'right' or 'left', got {patient_side!r}")

    def describe(self) -> dict:
        """JSON-ready summary for results: source, method, boxes (x0, y0, x1, y1 px), landmarks."""
        return {
            "source": self.source,
            "method": self.method,
            "right_lung_box": [round(v, 1) for v in (self.image_left.x0, self.image_left.y0,
                                                     self.image_left.x1, self.image_left.y1)],
            "left_lung_box": [round(v, 1) for v in (self.image_right.x0, self.image_right.y0,
                                                    self.image_right.x1, self.image_right.y1)],
            "landmarks": {k: [round(v[0], 1), round(v[1], 1)] for k, v in self.landmarks.items()},
        }


def coarse_lung_fields(image_size: tuple[int, int], reason: str = "") -> LungFields:
    """Boxes whose zone-third centres are exactly the thesis coarse centres."""
    width, height = image_size
    half_w = 0.15 * width
    y0, y1 = (COARSE_Y[0] - 0.15) * height, (COARSE_Y[2] + 0.15) * height  # thirds centred at 0.2/0.5/0.8 H
    left = Box(COARSE_X[0] * width - half_w, y0, COARSE_X[0] * width + half_w, y1)
    right = Box(COARSE_X[1] * width - half_w, y0, COARSE_X[1] * width + half_w, y1)
    method = "coarse centres 0.30W/0.70W × 0.20H/0.50H/0.80H (no chest found" + (f": {reason})" if reason else ")")
    return LungFields((width, height), left, right, "coarse", reason, method=method)


def estimate_lung_fields(array: np.ndarray) -> LungFields:
    """(H, W) float image in [0, 1] with dark lungs → LungFields; coarse fallback with a reason when implausible.

    Dark cores whose lower borders are as sharp as a diaphragm are the lungs themselves ("segmented"); short
    cores (grey lower lungs) seed the atlas fit, which also runs alone when no cores are found ("atlas").
    """
    if array.ndim != 2 or min(array.shape) < 8:
        raise ValueError(f"lung fields need an (H, W) image of at least 8x8 pixels, got shape {array.shape}")
    height, width = array.shape
    array = fill_flat_borders(array)  # corners and bars of an export are not anatomy
    cores, core_reason = dark_cores(array)
    if cores is not None and all(complete_lungs(cores)):
        return _segmented_fields(cores, (width, height))
    seeds = None if cores is None else tuple(_mask_box(cores.labels == label, cores.scale) for label in (1, 2))
    fit = fit_lungs(array, seeds)  # type: ignore[arg-type]
    if fit.boxes is None:
        return coarse_lung_fields((width, height), fit.reason)
    atlas = lung_atlas()
    boxes = [Box(*b) for b in fit.boxes]
    labels, scale = _labels(boxes, (width, height))
    landmarks = {}
    for lung, (box, side) in enumerate(zip(boxes, PATIENT_SIDES)):
        for name, (fx, fy) in zip(LANDMARK_NAMES, atlas.landmarks[lung]):
            landmarks[f"{side} {name}"] = (box.x0 + fx * box.width, box.y0 + fy * box.height)
    start = "the dark lung cores" if cores is not None else "a search for the two-lung shape"
    method = (f"atlas: mean shape of {atlas.count} real lung masks (torchxrayvision v7labs set) fitted to this "
              f"image from {start}, border contrast {fit.contrast:.2f}")
    return LungFields((width, height), boxes[0], boxes[1], "image", "", labels, scale, landmarks, method)


def _segmented_fields(cores: Cores, image_size: tuple[int, int]) -> LungFields:
    """Fields straight from whole-lung dark cores, landmarks read off the masks."""
    boxes, landmarks = [], {}
    for label, side in ((1, "right"), (2, "left")):
        mask = cores.labels == label
        box = Box(*_mask_box(mask, cores.scale))
        boxes.append(box)
        marks = mask_landmarks(mask, medial_is_high_x=label == 1)
        for name, (fx, fy) in zip(LANDMARK_NAMES, marks):
            landmarks[f"{side} {name}"] = (box.x0 + fx * box.width, box.y0 + fy * box.height)
    method = "segmented: two dark lung fields with diaphragm-sharp lower borders, read from this image"
    return LungFields(image_size, boxes[0], boxes[1], "image", "", cores.labels, cores.scale, landmarks, method)


def _mask_box(mask: np.ndarray, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    """Bounding box of a mask at core/label scale, in image pixels."""
    ys, xs = np.nonzero(mask)
    return (float(xs.min() / scale[0]), float(ys.min() / scale[1]), float((xs.max() + 1) / scale[0]),
            float((ys.max() + 1) / scale[1]))


def _labels(boxes: list[Box], image_size: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """The atlas lung shapes warped into the boxes, at LABEL_SIDE: (h, w) uint8 (0, 1, 2) and the scale."""
    import cv2

    width, height = image_size
    factor = min(1.0, LABEL_SIDE / max(width, height))
    w, h = max(8, round(width * factor)), max(8, round(height * factor))
    sx, sy = w / width, h / height
    probability = np.zeros((2, h, w), np.float32)  # (2, h, w)
    atlas = lung_atlas()
    for lung, box in enumerate(boxes):
        x0, y0 = int(np.floor(box.x0 * sx)), int(np.floor(box.y0 * sy))
        x1, y1 = int(np.ceil(box.x1 * sx)), int(np.ceil(box.y1 * sy))
        warped = cv2.resize(atlas.lung_mean[lung], (max(1, x1 - x0), max(1, y1 - y0)),
                            interpolation=cv2.INTER_LINEAR)  # (y1 - y0, x1 - x0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 > cx0 and cy1 > cy0:
            probability[lung, cy0:cy1, cx0:cx1] = warped[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    labels = np.where(probability.max(axis=0) >= 0.5, probability.argmax(axis=0) + 1, 0).astype(np.uint8)
    return labels, (sx, sy)
