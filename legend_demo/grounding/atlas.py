"""The lung shape atlas: statistics of 373 real lung masks (torchxrayvision's v7labs set), loaded once.

Built by scripts/build_lung_atlas.py from torchxrayvision-1.5.7's `semantic_masks_v7labs_lungs.zip`
(data/lung_atlas.npz, 43 kB). Coordinates: the "pair box" is the box around both lungs; each lung also has its
own box. Index 0 is the image-left lung (the patient's right on a PA/AP film in standard display), 1 the
image-right lung. Landmarks per lung, as (x, y) fractions of that lung's box: apex, dome (top of the
hemidiaphragm), costophrenic angle.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ATLAS_PATH = Path(__file__).resolve().parent / "data" / "lung_atlas.npz"
LANDMARK_NAMES = ("apex", "dome", "costophrenic")
DOME_COLUMNS = (0.2, 0.8)  # the dome is searched between these fractions of the lung width


@dataclass(frozen=True)
class LungAtlas:
    pair_mean: np.ndarray  # (64, 64) float32 in [0, 1]: how often a pixel of the pair box is lung
    lung_mean: np.ndarray  # (2, 64, 64) float32: the same for each lung in its own box
    lung_boxes: np.ndarray  # (2, 4) mean x0, y0, x1, y1 of each lung as fractions of the pair box
    landmarks: np.ndarray  # (2, 3, 2) mean apex, dome, costophrenic (x, y) as fractions of each lung's box
    bottom_gap: tuple[float, float]  # mean, std of (image-right − image-left) lung bottom, pair-box heights
    top_gap: tuple[float, float]  # the same for the lung tops (apices)
    aspect: tuple[float, float]  # 2nd and 98th percentile of pair-box height / width (pixels)
    count: int
    source: str

    def lower_border(self, lung: int) -> np.ndarray:
        """(64,) the lung's lowest row per column (fraction of its box height; NaN where no lung)."""
        return _border(self.lung_mean[lung] >= 0.5, axis=0, last=True)

    def upper_border(self, lung: int) -> np.ndarray:
        """(64,) the lung's top row per column (fraction of its box height; NaN where no lung)."""
        return _border(self.lung_mean[lung] >= 0.5, axis=0, last=False)

    def side_border(self, lung: int, high_x: bool) -> np.ndarray:
        """(64,) per row, the lung's rightmost (high_x) or leftmost column (fraction of its box width)."""
        return _border(self.lung_mean[lung] >= 0.5, axis=1, last=high_x)


def mask_landmarks(lung: np.ndarray, medial_is_high_x: bool) -> np.ndarray:
    """(3, 2) apex, dome, costophrenic angle of one lung mask, as (x, y) fractions of the mask's own box.

    Apex: the top row (x: mean over the top 1 % of rows). Dome: the highest point of the lower border between
    DOME_COLUMNS of the width. Costophrenic angle: the lowest-most-lateral pixel (max of y/h − lateral/w).
    The atlas builder and the fitted fields use this one definition.
    """
    ys, xs = np.nonzero(lung)
    x0, y0 = xs.min(), ys.min()
    w, h = xs.max() - x0 + 1, ys.max() - y0 + 1
    crop = lung[y0:y0 + h, x0:x0 + w]  # (h, w)
    ys, xs = ys - y0, xs - x0
    top_rows = ys <= max(1, round(0.01 * h))
    apex = (xs[top_rows].mean() + 0.5, 0.0)
    lowest = np.where(crop.any(axis=0), h - 1 - np.argmax(crop[::-1], axis=0), -1)  # (w,) last lung row
    c0 = int(DOME_COLUMNS[0] * w)
    c1 = max(c0 + 1, int(DOME_COLUMNS[1] * w))
    band = lowest[c0:c1].astype(float)
    band[band < 0] = np.inf
    column = c0 + int(np.argmin(band))
    dome = (column + 0.5, lowest[column] + 1.0)
    lateral = xs if medial_is_high_x else (w - 1 - xs)  # distance from the lateral edge, pixels
    k = int(np.argmax(ys / h - lateral / w))
    angle = (xs[k] + 0.5, ys[k] + 1.0)
    return np.array([apex, dome, angle], np.float64) / np.array([w, h], np.float64)


def _border(mask: np.ndarray, axis: int, last: bool) -> np.ndarray:
    """First (or last) True index along `axis`, as a fraction of the grid (edge of the cell), NaN if none."""
    size = mask.shape[axis]
    present = mask.any(axis=axis)
    if last:
        index = size - np.argmax(np.flip(mask, axis=axis), axis=axis)  # one past the last True cell
    else:
        index = np.argmax(mask, axis=axis)
    return np.where(present, index / size, np.nan).astype(np.float32)


@lru_cache(maxsize=1)
def lung_atlas() -> LungAtlas:
    """The atlas shipped with the package (raises FileNotFoundError naming the rebuild script if missing)."""
    if not ATLAS_PATH.is_file():
        raise FileNotFoundError("the lung atlas data/lung_atlas.npz is missing; rebuild it with "
                                "scripts/build_lung_atlas.py")
    with np.load(ATLAS_PATH) as data:
        boxes = data["lung_boxes"].astype(np.float64)  # (N, 2, 4)
        gap = boxes[:, 1, 3] - boxes[:, 0, 3]
        top_gap = boxes[:, 1, 1] - boxes[:, 0, 1]
        aspect = data["aspect"].astype(np.float64)
        return LungAtlas(
            pair_mean=data["pair_mean"].astype(np.float32) / 255.0,
            lung_mean=data["lung_mean"].astype(np.float32) / 255.0,
            lung_boxes=boxes.mean(axis=0),
            landmarks=data["landmarks"].astype(np.float64).mean(axis=0),
            bottom_gap=(float(gap.mean()), float(gap.std())),
            top_gap=(float(top_gap.mean()), float(top_gap.std())),
            aspect=(float(np.percentile(aspect, 2)), float(np.percentile(aspect, 98))),
            count=int(len(aspect)),
            source=str(data["source"]),
        )
