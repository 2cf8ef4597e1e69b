"""Where each kind of finding goes inside the lung fields (thesis §4.6 localisation rules).

Lung findings: centre of the named third of that lung (upper / middle / lower; apex the top sixth, base the
bottom quarter; perihilar, supra-/infrahilar, retrocardiac and cardiophrenic the medial half; axillary the lateral
half). Effusion: just inside the fitted costophrenic angle. Pneumothorax: the apicolateral pleura. The
hemidiaphragm: the fitted dome. Heart / mediastinum / device tips: landmarks placed relative to both lungs.
"""
from __future__ import annotations

import numpy as np

from .lung_fields import Box, LungFields

# zone → (top, bottom) as fractions of lung height, and which part of the width: all, medial or lateral half.
ZONE_BANDS: dict[str, tuple[float, float, str]] = {
    "upper": (0.0, 1 / 3, "all"),
    "middle": (1 / 3, 2 / 3, "all"),
    "lower": (2 / 3, 1.0, "all"),
    "apex": (0.0, 1 / 6, "all"),
    "base": (0.75, 1.0, "all"),
    "perihilar": (1 / 3, 2 / 3, "medial"),
    "suprahilar": (0.15, 0.40, "medial"),
    "infrahilar": (0.50, 0.75, "medial"),
    "retrocardiac": (2 / 3, 1.0, "medial"),
    "cardiophrenic": (0.80, 1.0, "medial"),
    "costophrenic": (0.82, 1.0, "lateral"),
    "dome": (0.80, 1.0, "all"),
    "apicolateral": (0.0, 0.2, "lateral"),
    "axillary": (0.15, 0.45, "lateral"),
    "lateral": (0.30, 0.70, "lateral"),
}
# Zones placed at a fitted landmark when the fields have landmarks: (landmark, step towards the lung's centre as
# fractions of the lung box (medial, up)). The costophrenic point sits just inside the angle; the dome point is
# the top of the hemidiaphragm itself.
LANDMARK_ZONES: dict[str, tuple[str, tuple[float, float]]] = {
    "costophrenic": ("costophrenic", (0.12, 0.06)),
    "dome": ("dome", (0.0, 0.0)),
}

# Landmark → (x as a fraction from the image-left lung's lateral edge to the image-right lung's lateral edge,
#             y as a fraction of the lung height from the lung tops). 0.5 is the midline.
LANDMARKS: dict[str, tuple[float, float]] = {
    "cardiac": (0.56, 0.68),  # the heart sits left of the patient's midline = image right
    "mediastinal": (0.50, 0.30),
    "trachea": (0.50, 0.12),
    "carina": (0.50, 0.30),
    "svc": (0.45, 0.38),  # patient right of the midline = image left
    "right_atrium": (0.44, 0.62),
    "stomach": (0.66, 1.08),  # below the patient's left hemidiaphragm
}


def zone_point(fields: LungFields, patient_side: str, zone: str) -> tuple[float, float]:
    """Centre of `zone` of the patient's `patient_side` lung, inside the estimated lung when there is a mask."""
    if zone not in ZONE_BANDS:
        raise ValueError(f"unknown lung zone {zone!r}; known: {sorted(ZONE_BANDS)}")
    box, label = fields.lung_for_side(patient_side)
    if zone in LANDMARK_ZONES and f"{patient_side} {LANDMARK_ZONES[zone][0]}" in fields.landmarks:
        return _at_landmark(fields, patient_side, zone, box, label)
    top, bottom, part = ZONE_BANDS[zone]
    medial_is_high_x = patient_side == "right"  # the image-left lung's medial edge is its right edge
    x0, x1 = _part(box, part, medial_is_high_x)
    y0, y1 = box.y0 + top * box.height, box.y0 + bottom * box.height
    if fields.labels is not None:
        inside = _centroid_in_mask(fields, label, (x0, y0, x1, y1))
        if inside is not None:
            return inside
    return (x0 + x1) / 2, (y0 + y1) / 2


def landmark_point(fields: LungFields, landmark: str) -> tuple[float, float]:
    """A mediastinal / cardiac / device-tip landmark, kept inside the image."""
    if landmark not in LANDMARKS:
        raise ValueError(f"unknown landmark {landmark!r}; known: {sorted(LANDMARKS)}")
    fx, fy = LANDMARKS[landmark]
    left, right = fields.image_left, fields.image_right
    top, bottom = min(left.y0, right.y0), max(left.y1, right.y1)
    x = left.x0 + fx * (right.x1 - left.x0)
    y = top + fy * (bottom - top)
    width, height = fields.image_size
    return min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)


def _at_landmark(fields: LungFields, patient_side: str, zone: str, box: Box, label: int) -> tuple[float, float]:
    """The zone's landmark stepped towards the lung's centre, then onto the nearest lung pixel."""
    name, (medial, up) = LANDMARK_ZONES[zone]
    x, y = fields.landmarks[f"{patient_side} {name}"]
    towards_midline = 1.0 if patient_side == "right" else -1.0  # the image-left lung's medial side is its right
    x, y = x + towards_midline * medial * box.width, y - up * box.height
    if fields.labels is None or medial == up == 0.0:
        return x, y
    return _nearest_in_mask(fields, label, x, y)


def _nearest_in_mask(fields: LungFields, label: int, x: float, y: float) -> tuple[float, float]:
    sx, sy = fields.scale
    rows, cols = np.nonzero(fields.labels == label)
    if len(rows) == 0:
        return x, y
    k = int(np.argmin((cols - (x + 0.5) * sx + 0.5) ** 2 + (rows - (y + 0.5) * sy + 0.5) ** 2))
    return (cols[k] + 0.5) / sx - 0.5, (rows[k] + 0.5) / sy - 0.5


def _part(box: Box, part: str, medial_is_high_x: bool) -> tuple[float, float]:
    mid = (box.x0 + box.x1) / 2
    if part == "all":
        return box.x0, box.x1
    high_x = (part == "medial") == medial_is_high_x
    return (mid, box.x1) if high_x else (box.x0, mid)


def _centroid_in_mask(fields: LungFields, label: int, region: tuple[float, float, float, float]):
    """Mean of the lung-mask pixels in `region` (image px), snapped to the nearest mask pixel; None if empty."""
    sx, sy = fields.scale
    labels = fields.labels
    x0, y0, x1, y1 = region
    c0, c1 = int(np.floor(x0 * sx)), int(np.ceil(x1 * sx))
    r0, r1 = int(np.floor(y0 * sy)), int(np.ceil(y1 * sy))
    window = labels[r0:r1, c0:c1] == label  # (rows, cols)
    ys, xs = np.nonzero(window)
    if len(xs) == 0:
        return None
    cx, cy = xs.mean(), ys.mean()
    nearest = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    col, row = xs[nearest] + c0, ys[nearest] + r0
    return (col + 0.5) / sx - 0.5, (row + 0.5) / sy - 0.5
