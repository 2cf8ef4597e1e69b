"""Dark lung cores: the lungs as the image shows them, by thresholding (the first-release method).

Threshold the down-scaled radiograph at a few levels, clean with morphology, and take the two largest dark
connected components inside the thorax (not touching the left, right or bottom border). On a high-contrast
film these are the whole lung fields; on many real films they stop where the lower lungs turn grey (breast
and soft-tissue overlap), far above the diaphragm. `complete_lungs` tells the two apart by the contrast of
each core's lower border against its lateral border and by its shape; lung_fields.py completes the others
with the atlas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORE_SIDE = 160  # pixels of the longer side the cores are searched at
COMPLETE_RATIO = 0.85  # a whole-lung core's lower border (the diaphragm) is about as sharp as its lateral one
MIN_SHAPE_IOU = 0.68  # drawn ellipses score 0.72, ragged partial cores of synthetic DRRs 0.38–0.6
MIN_BORDER_CONTRAST = 20.0  # grey levels (of 255): weaker borders are no lung border at all


@dataclass(frozen=True)
class Cores:
    """(h, w) uint8 labels at core scale (1 image-left, 2 image-right), the scale, and the smoothed image."""

    labels: np.ndarray
    scale: tuple[float, float]  # core pixels per image pixel (x, y)
    smooth: np.ndarray  # (h, w) uint8, the stretched, blurred image the cores were cut from


def dark_cores(array: np.ndarray) -> tuple[Cores | None, str]:
    """(H, W) float image in [0, 1], lungs dark → (Cores, "") or (None, reason)."""
    import cv2

    height, width = array.shape
    scale = min(1.0, CORE_SIDE / max(height, width))
    step = max(1, int(max(height, width) // (2 * CORE_SIDE)))  # cheap decimation first, then area averaging
    decimated = np.ascontiguousarray(array[::step, ::step], dtype=np.float32)  # (~2·side, ~2·side)
    small = cv2.resize(decimated, (max(8, round(width * scale)), max(8, round(height * scale))),
                       interpolation=cv2.INTER_AREA)  # (h, w)
    scale_xy = (small.shape[1] / width, small.shape[0] / height)
    smooth = cv2.GaussianBlur(_stretch(small), (5, 5), 0)  # (h, w) uint8
    reason = "no threshold separated two lungs"
    for threshold in _thresholds(smooth):
        labels, reason = _two_lungs(smooth < threshold)
        if labels is not None:
            return Cores(labels, scale_xy, smooth), ""
    return None, reason


def complete_lungs(cores: Cores) -> tuple[bool, bool]:
    """Per core (image-left, image-right): is it a whole lung — lung-shaped (IoU with the atlas shape in its
    box ≥ MIN_SHAPE_IOU) with a lower border as sharp as a diaphragm?"""
    return tuple(_lung_shaped(cores, label) and _lower_border_is_sharp(cores, label)  # type: ignore[return-value]
                 for label in (1, 2))


def _lung_shaped(cores: Cores, label: int) -> bool:
    import cv2

    from .atlas import lung_atlas

    mask = cores.labels == label
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    shape = cv2.resize(lung_atlas().lung_mean[label - 1], (int(x1 - x0), int(y1 - y0))) >= 0.5
    core = mask[y0:y1, x0:x1]
    return float((shape & core).sum() / max((shape | core).sum(), 1)) >= MIN_SHAPE_IOU


def _lower_border_is_sharp(cores: Cores, label: int) -> bool:
    mask = cores.labels == label
    image = cores.smooth.astype(np.float32)
    ys, xs = np.nonzero(mask)
    height = ys.max() - ys.min() + 1
    band = max(2, round(0.06 * height))
    lateral_high_x = label == 2
    lower = _border_contrast(image, mask, band, axis=0, last=True, span=(0.3, 0.7))
    lateral = _border_contrast(image, mask, band, axis=1, last=lateral_high_x, span=(0.3, 0.8))
    return lower >= MIN_BORDER_CONTRAST and lower >= COMPLETE_RATIO * lateral


def _border_contrast(image: np.ndarray, mask: np.ndarray, band: int, axis: int, last: bool,
                     span: tuple[float, float]) -> float:
    """Mean (outside − inside) grey level across one border of the mask, over the middle `span` of lines."""
    lines = np.flatnonzero(mask.any(axis=axis))  # columns (axis 0) or rows (axis 1) that hold the mask
    lo, hi = lines[0] + span[0] * (len(lines) - 1), lines[0] + span[1] * (len(lines) - 1)
    values = []
    for line in lines[(lines >= lo) & (lines <= hi)]:
        profile = image[:, line] if axis == 0 else image[line, :]
        inside = np.flatnonzero(mask[:, line] if axis == 0 else mask[line, :])
        edge = inside[-1] if last else inside[0]
        step = 1 if last else -1
        out = profile[_span(edge + step, band, step, len(profile))]
        into = profile[_span(edge, band, -step, len(profile))]
        if len(out) and len(into):
            values.append(float(out.mean() - into.mean()))
    return float(np.mean(values)) if values else 0.0


def _span(start: int, length: int, step: int, size: int) -> np.ndarray:
    index = start + step * np.arange(length)
    return index[(index >= 0) & (index < size)]


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
