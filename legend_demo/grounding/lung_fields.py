"""Lung fields from the image with classical CV (thesis §4.6: "visually estimate lung fields").

Threshold the down-scaled radiograph at a few levels, clean with morphology, and take the two largest dark
connected components inside the thorax (not touching the left, right or bottom border) as the lungs. If no
threshold gives a plausible pair, fall back to the thesis coarse centres (0.30W / 0.70W × 0.20H / 0.50H / 0.80H).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

WORK_SIDE = 160  # pixels of the longer side the lungs are searched at (speed: ≤ 50 ms a call)
COARSE_X = (0.30, 0.70)  # image-left (patient right) and image-right (patient left) lung centres, fraction of W
COARSE_Y = (0.20, 0.50, 0.80)  # upper / middle / lower zone centres, fraction of H


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
    """Both lung boxes in image pixels; `labels` (1 = image-left lung, 2 = image-right lung) at work scale."""

    image_size: tuple[int, int]  # (W, H)
    image_left: Box  # the patient's RIGHT lung on a PA/AP film
    image_right: Box  # the patient's LEFT lung
    source: Literal["image", "coarse"]
    reason: str = ""
    labels: np.ndarray | None = None  # (h, w) uint8 at work scale, or None for the coarse boxes
    scale: tuple[float, float] = (1.0, 1.0)  # work pixels per image pixel in x and y

    def lung_for_side(self, patient_side: str) -> tuple[Box, int]:
        """Patient right → image-left lung (label 1); patient left → image-right lung (label 2)."""
        if patient_side == "right":
            return self.image_left, 1
        if patient_side == "left":
            return self.image_right, 2
        raise ValueError(f"patient side must be 'right' or 'left', got {patient_side!r}")


def coarse_lung_fields(image_size: tuple[int, int], reason: str = "") -> LungFields:
    """Boxes whose zone-third centres are exactly the thesis coarse centres."""
    width, height = image_size
    half_w = 0.15 * width
    y0, y1 = (COARSE_Y[0] - 0.15) * height, (COARSE_Y[2] + 0.15) * height  # thirds centred at 0.2/0.5/0.8 H
    left = Box(COARSE_X[0] * width - half_w, y0, COARSE_X[0] * width + half_w, y1)
    right = Box(COARSE_X[1] * width - half_w, y0, COARSE_X[1] * width + half_w, y1)
    return LungFields((width, height), left, right, "coarse", reason)


def estimate_lung_fields(array: np.ndarray) -> LungFields:
    """(H, W) float image in [0, 1] with dark lungs → LungFields; coarse fallback with a reason when implausible."""
    import cv2

    if array.ndim != 2 or min(array.shape) < 8:
        raise ValueError(f"lung fields need an (H, W) image of at least 8x8 pixels, got shape {array.shape}")
    height, width = array.shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    step = max(1, int(max(height, width) // (2 * WORK_SIDE)))  # cheap decimation first, then area averaging
    decimated = np.ascontiguousarray(array[::step, ::step], dtype=np.float32)  # (~2·work, ~2·work)
    small = cv2.resize(decimated, (max(8, round(width * scale)), max(8, round(height * scale))),
                       interpolation=cv2.INTER_AREA)  # (h, w)
    scale_x, scale_y = small.shape[1] / width, small.shape[0] / height
    smooth = cv2.GaussianBlur(_stretch(small), (5, 5), 0)  # (h, w) uint8
    reason = "no threshold separated two lungs"
    for threshold in _thresholds(smooth):
        labels, reason = _two_lungs(smooth < threshold)
        if labels is not None:
            left = _box_of(labels == 1, scale_x, scale_y)
            right = _box_of(labels == 2, scale_x, scale_y)
            return LungFields((width, height), left, right, "image", "", labels, (scale_x, scale_y))
    return coarse_lung_fields((width, height), reason)


def _stretch(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, (1, 99))
    if high - low < 1e-6:
        return np.zeros(image.shape, np.uint8)
    return (np.clip((image - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def _thresholds(smooth: np.ndarray) -> list[float]:
    import cv2

    otsu, _ = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return [float(otsu)] + [float(np.percentile(smooth, q)) for q in (30, 40, 50, 22)]


def _two_lungs(dark: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Two largest dark components inside the thorax → labels (1 image-left, 2 image-right), or a reason."""
    import cv2

    h, w = dark.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, w // 40) | 1, max(3, h // 40) | 1))
    mask = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    count, comp, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    inside = []
    for index in range(1, count):
        x, y, bw, bh, area = stats[index]
        touches = x == 0 or x + bw >= w or y + bh >= h
        if not touches and 0.02 * h * w <= area <= 0.40 * h * w:
            inside.append(index)
    if len(inside) < 2:
        return None, f"found {len(inside)} dark region(s) inside the thorax, need 2"
    first, second = sorted(inside, key=lambda i: -stats[i][4])[:2]
    left, right = sorted((first, second), key=lambda i: centroids[i][0])
    problem = _implausible(stats[left], stats[right], centroids[left], centroids[right], w, h)
    if problem:
        return None, problem
    labels = np.zeros((h, w), np.uint8)
    for value, index in ((1, left), (2, right)):
        labels[_filled(comp == index)] = value
    return labels, ""


def _implausible(left, right, c_left, c_right, w: int, h: int) -> str:
    """A one-line reason why two components are not a pair of lungs, or '' when they are."""
    if not (c_left[0] < 0.5 * w < c_right[0]):
        return f"dark regions centred at x={c_left[0] / w:.2f}W and {c_right[0] / w:.2f}W are not one per side"
    heights = (left[3] / h, right[3] / h)
    if min(heights) < 0.20:
        return f"dark regions only {min(heights):.2f}H tall (need ≥ 0.20H)"
    ratio = min(left[4], right[4]) / max(left[4], right[4])
    if ratio < 0.25:
        return f"dark regions differ in area by {1 / ratio:.1f}x"
    overlap = min(left[1] + left[3], right[1] + right[3]) - max(left[1], right[1])
    if overlap < 0.5 * min(left[3], right[3]):
        return "dark regions do not overlap vertically like two lungs"
    if left[0] + left[2] > right[0] + 1:
        return "dark regions overlap horizontally"
    return ""


def _filled(component: np.ndarray) -> np.ndarray:
    """The component with its holes filled (vessels and nodules inside a lung stay lung)."""
    import cv2

    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(component.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _box_of(mask: np.ndarray, scale_x: float, scale_y: float) -> Box:
    ys, xs = np.nonzero(mask)
    return Box(float(xs.min() / scale_x), float(ys.min() / scale_y), float((xs.max() + 1) / scale_x),
               float((ys.max() + 1) / scale_y))
