"""Real-film checks of a rendered finding (issue 19), against reference lines drawn independently of the renderer
(hand-traced hemidiaphragms and chest walls, legend_demo/grounding/landmark_check.py), in the film's attenuation
units a (stored values oriented dense-high, legend_demo.core.intensity.AttenuationScale).

- new_clipped: pixels of the follow-up at an end of the prior's stored range (its min or max) that were not there;
- above_soft_tissue: share of the new opacity (Δa > NEW_OPACITY) brighter than both the prior there and the film's
  own dense soft tissue D (a high percentile of the spine/mediastinum column, `dense_soft_tissue`);
- below_diaphragm / outside_chest_wall: share of Σ|Δa| below the traced hemidiaphragms (joined under the heart,
  held flat laterally) / lateral to the traced chest walls by more than a margin;
- texture_reduction: 1 − (fine-texture energy after / before) in the dense core of a new opacity (Δa ≥ ½ of its
  maximum, eroded by 3 σc so its own edge does not count), fine texture = G_σf − G_σc of a (σ ≈ 0.3 and 1.5 mm on a 43 cm film: vessels, not the grain);
- lower_share: share of Σ|Δa| in the lower half of the named hemithorax (between its apex and its dome).
Pure numpy + OpenCV.
"""
from __future__ import annotations

import numpy as np

NEW_OPACITY = 0.01  # Δa above this (1 % of the stored range) counts as new opacity
SOFT_TISSUE_PERCENTILE = 95
WALL_MARGIN = 0.015  # × the film width


def polyline_rows(points: list[tuple[float, float]], width: int) -> np.ndarray:
    """(width,) y of a polyline at every column, joined linearly between its points, held flat beyond its ends."""
    pts = sorted(points)
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return np.interp(np.arange(width), xs, ys)


def polyline_cols(points: list[tuple[float, float]], height: int) -> np.ndarray:
    """(height,) x of a polyline at every row (a wall traced from top to bottom), held flat beyond its ends."""
    pts = sorted(points, key=lambda p: p[1])
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return np.interp(np.arange(height), ys, xs)


def below_diaphragm(shape: tuple[int, int], right: list[tuple[float, float]],
                    left: list[tuple[float, float]]) -> np.ndarray:
    """(H, W) bool below both traced hemidiaphragms (one line through both, joined under the heart)."""
    height, width = shape
    line = polyline_rows(list(right) + list(left), width)
    return np.arange(height)[:, None] > line[None, :]


def outside_chest_wall(shape: tuple[int, int], right: list[tuple[float, float]], left: list[tuple[float, float]],
                       margin: float = WALL_MARGIN) -> np.ndarray:
    """(H, W) bool lateral to the traced chest walls by more than margin × W (right wall = the image-left one)."""
    height, width = shape
    a, b = polyline_cols(right, height), polyline_cols(left, height)
    low, high = np.minimum(a, b), np.maximum(a, b)
    cols = np.arange(width)[None, :]
    pad = margin * width
    return (cols < low[:, None] - pad) | (cols > high[:, None] + pad)


def new_clipped(prior_stored: np.ndarray, follow_stored: np.ndarray) -> int:
    """Pixels of the follow-up at the prior's stored min or max that were not at that value before."""
    low, high = prior_stored.min(), prior_stored.max()
    at_end = (follow_stored <= low) | (follow_stored >= high)
    return int((at_end & (follow_stored != prior_stored)).sum())


def dense_soft_tissue(a: np.ndarray, column: tuple[int, int, int, int]) -> float:
    """D: the SOFT_TISSUE_PERCENTILE of a over a box (x0, y0, x1, y1) of spine and mediastinum."""
    x0, y0, x1, y1 = column
    return float(np.percentile(a[y0:y1, x0:x1], SOFT_TISSUE_PERCENTILE))


def above_soft_tissue(prior_a: np.ndarray, follow_a: np.ndarray, ceiling: float, tolerance: float = 0.002) -> float:
    """Share of the new opacity brighter than both the prior there and the dense soft tissue D (0 without one)."""
    new = follow_a - prior_a > NEW_OPACITY
    if not new.any():
        return 0.0
    brighter = follow_a > np.maximum(prior_a, ceiling) + tolerance
    return float((brighter & new).sum() / new.sum())


def change_share(delta: np.ndarray, region: np.ndarray) -> float:
    """Σ|Δ| inside `region` over Σ|Δ| (0 when nothing changed)."""
    total = float(np.abs(delta).sum())
    return float(np.abs(delta)[region].sum() / total) if total > 0 else 0.0


def texture_reduction(prior_a: np.ndarray, follow_a: np.ndarray, width_px: int) -> float | None:
    """1 − fine-texture energy after / before in the dense core of the new opacity; None without a new opacity."""
    import cv2

    delta = follow_a - prior_a
    if delta.max() <= 2 * NEW_OPACITY:
        return None
    fine, coarse = max(0.5, 0.0008 * width_px), max(1.5, 0.004 * width_px)
    reach = int(np.ceil(3 * coarse))  # the core's interior: the opacity's own edge is no texture
    core = cv2.erode((delta >= 0.5 * delta.max()).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    if core.sum() < 16:
        return None

    def band(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        return cv2.GaussianBlur(a, (0, 0), fine) - cv2.GaussianBlur(a, (0, 0), coarse)

    before, after = band(prior_a)[core].std(), band(follow_a)[core].std()
    return float(1.0 - after / before) if before > 0 else None


def lower_half(shape: tuple[int, int], apex_y: float, dome_y: float, side_cols: tuple[float, float]) -> np.ndarray:
    """(H, W) bool: the lower half of one hemithorax (rows between the apex–dome midpoint and the dome + 10 %,
    columns side_cols)."""
    height, width = shape
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    middle = (apex_y + dome_y) / 2
    bottom = dome_y + 0.1 * (dome_y - apex_y)
    return (rows >= middle) & (rows <= bottom) & (cols >= side_cols[0]) & (cols <= side_cols[1])

