"""The film's anatomy as masks, found once per film: lung fields, hemidiaphragms, costophrenic recesses, heart and
mediastinum, the thoracic cavity and the chest wall (seed 001's organ masks; DESIGN "A change is a finding in the
patient's anatomy").

Built in standard display (patient right on the image left, head up) on a grid of ANATOMY_SIDE px (long side):
1. lung fields: the fitted lung atlas (lung_fields.py) or the segmented dark lungs, as two masks;
2. each hemidiaphragm: the lung's lower border moved, column by column, to the film's own strongest
   dark-above / bright-below edge within DOME_SEARCH lung heights of it (where that edge is clear), then smoothed;
3. the diaphragm line across the film: each lung's lower border, joined linearly under the heart and held flat
   lateral to the lungs; everything below it is "below the hemidiaphragm";
4. heart and mediastinum: the column between the two lungs' medial borders, above the diaphragm line; the heart is
   its part below HEART_TOP of the lungs' height;
5. thoracic cavity: per row, from the image-left lung's lateral border to the image-right lung's, from the apices
   to the diaphragm line; the chest wall is the band of CHEST_WALL × the lung-pair width outside it;
6. costophrenic recesses: the lateral lower corner of each lung field.
When no lung fields are found, `profile_anatomy` estimates the thorax and the diaphragm from intensity profiles
(lower confidence); when even that fails the anatomy is empty and says so. Pure numpy + OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..grounding.lung_fields import LungFields
from ..grounding.orientation import Orientation

ANATOMY_SIDE = 256  # px, long side of the anatomy grid
DOME_SEARCH = 0.10  # the film's dome edge is searched within ± this fraction of the lung height
DOME_MIN_EDGE = 0.04  # equalised grey step that counts as a dome edge
HEART_TOP = 0.45  # the heart is the mediastinum below this fraction of the lung height
DOME_BAND = 0.03  # a lung's lower border counts as its dome up to this fraction of its height above the dome top
CHEST_WALL = 0.07  # chest-wall band width, fraction of the lung-pair width
RECESS_HEIGHT = 0.22  # costophrenic recess: the lowest fraction of the lung height …
RECESS_WIDTH = 0.45  # … in the lateral fraction of the lung width
COARSE_SAFE_ROWS = (0.20, 0.41, 0.62)  # zone centres without any anatomy: the lower one above a typical diaphragm
PROFILE_CONTRAST = 0.08  # profile fallback: lungs at least this much darker than abdomen and mediastinum
PATIENT_SIDES = ("right", "left")  # lung 0 is the image-left lung in standard display = the patient's right


@dataclass(frozen=True, eq=False)
class FilmAnatomy:
    """Anatomy masks of one film in standard display on a (h, w) grid, with where they came from.

    lungs: (2, h, w) float32 in [0, 1], patient right then left; heart, mediastinum, thorax, chest_wall,
    below_diaphragm: (h, w) float32; recesses: (2, h, w); diaphragm: (w,) float32 row of the diaphragm line per
    column (grid px). film_size: (W, H) of the film as stored; orientation maps stored ⇄ standard.
    """

    film_size: tuple[int, int]
    orientation: Orientation
    lungs: np.ndarray
    heart: np.ndarray
    mediastinum: np.ndarray
    thorax: np.ndarray
    chest_wall: np.ndarray
    below_diaphragm: np.ndarray
    recesses: np.ndarray
    diaphragm: np.ndarray
    source: str  # "atlas fit", "segmented", "intensity profiles" or "none"
    confidence: float  # 0–1: how sure the masks are
    method: str
    notes: list[str] = field(default_factory=list)
    fields: LungFields | None = None  # the lung fields the masks came from (standard display pixels of the film)

    @property
    def found(self) -> bool:
        return self.source != "none"

    @property
    def grid_size(self) -> tuple[int, int]:
        """(w, h) of the grid."""
        return self.thorax.shape[1], self.thorax.shape[0]

    @property
    def standard_size(self) -> tuple[int, int]:
        """(W, H) of the film in standard display."""
        return self.orientation.standard_size(self.film_size)

    @property
    def pair_width(self) -> float:
        """Width of the two lung fields together, grid px (0 without lungs)."""
        cols = np.flatnonzero((self.lungs > 0.5).any(axis=(0, 1)))
        return float(cols[-1] - cols[0] + 1) if len(cols) else 0.0

    def lung(self, side: str) -> np.ndarray:
        """(h, w) lung field of the patient's `side` ('right' or 'left')."""
        if side not in PATIENT_SIDES:
            raise ValueError(f"patient side must be 'right' or 'left', got {side!r}")
        return self.lungs[PATIENT_SIDES.index(side)]

    def lung_box(self, side: str) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) grid box of a lung field, None when there is none."""
        ys, xs = np.nonzero(self.lung(side) > 0.5)
        if not len(xs):
            return None
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def to_grid(self, x: float, y: float) -> tuple[float, float]:
        """Film pixel (as stored) → grid coordinates (standard display)."""
        sx, sy = self.orientation_point(x, y)
        width, height = self.standard_size
        w, h = self.grid_size
        return (sx + 0.5) * w / width - 0.5, (sy + 0.5) * h / height - 0.5

    def to_film(self, gx: float, gy: float) -> tuple[float, float]:
        """Grid coordinates (standard display) → film pixel as stored."""
        return self.orientation.to_stored(*self.to_standard(gx, gy), self.film_size)

    def to_standard(self, gx: float, gy: float) -> tuple[float, float]:
        """Grid coordinates → film pixel in standard display."""
        width, height = self.standard_size
        w, h = self.grid_size
        return (gx + 0.5) * width / w - 0.5, (gy + 0.5) * height / h - 0.5

    def orientation_point(self, x: float, y: float) -> tuple[float, float]:
        """Stored film pixel → standard-display film pixel (the inverse of Orientation.to_stored)."""
        o = self.orientation
        if o.transpose:
            x, y = y, x
        width, height = self.standard_size
        if o.flip_x:
            x = width - 1 - x
        if o.flip_y:
            y = height - 1 - y
        return x, y

    def sample(self, grid_mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """A (h, w) grid mask read (bilinear) at the stored film pixel centres of box (x0, y0, x1, y1) → (h_b, w_b)."""
        import cv2

        x0, y0, x1, y1 = box
        if grid_mask.shape != self.thorax.shape:
            raise ValueError(f"grid mask is {grid_mask.shape}, the anatomy grid is {self.thorax.shape}")
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]  # (1, w_b) stored film px
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]  # (h_b, 1)
        xs, ys = np.broadcast_arrays(xs, ys)
        o = self.orientation
        width, height = self.standard_size
        sx, sy = (ys, xs) if o.transpose else (xs, ys)
        if o.flip_x:
            sx = width - 1 - sx
        if o.flip_y:
            sy = height - 1 - sy
        w, h = self.grid_size
        map_x = ((sx + 0.5) * (w / width) - 0.5).astype(np.float32)
        map_y = ((sy + 0.5) * (h / height) - 0.5).astype(np.float32)
        return cv2.remap(np.asarray(grid_mask, np.float32), map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def film_mask(self, grid_mask: np.ndarray) -> np.ndarray:
        """A grid mask on the whole stored film grid (H, W) float32."""
        width, height = self.film_size
        return self.sample(grid_mask, (0, 0, width, height))

    def outside_chest_wall(self, margin: float = 0.015) -> np.ndarray:
        """(h, w) bool grid: lateral to the thoracic cavity (or above it) by more than margin × the pair width."""
        import cv2

        grow = max(1, int(round(margin * max(self.pair_width, 1.0))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        cavity = ((self.thorax > 0.5) | (self.below_diaphragm > 0.5) & self._between_walls()).astype(np.uint8)
        return cv2.dilate(cavity, kernel) == 0

    def _between_walls(self) -> np.ndarray:
        """(h, w) bool: between the thorax's lateral walls, the lowest thorax row's walls held below it."""
        thorax = self.thorax > 0.5
        out = np.zeros_like(thorax)
        rows = np.flatnonzero(thorax.any(axis=1))
        if not len(rows):
            return out
        last = thorax[rows[-1]]
        cols = np.flatnonzero(last)
        out[rows[-1]:, cols[0]:cols[-1] + 1] = True
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-ready: source, confidence, method, notes, and where the domes are (film px)."""
        out = {"source": self.source, "confidence": round(float(self.confidence), 2), "method": self.method,
               "notes": list(self.notes)}
        for index, side in enumerate(PATIENT_SIDES):
            box = self.lung_box(side)
            if box is None:
                continue
            cols = np.arange(box[0], box[2])
            rows = self.diaphragm[cols]
            top = int(cols[int(np.nanargmin(rows))]) if np.isfinite(rows).any() else None
            if top is not None:
                out[f"{side} dome"] = [round(v, 1) for v in self.to_film(float(top), float(self.diaphragm[top]))]
        return out


def empty_anatomy(film_size: tuple[int, int], orientation: Orientation, reason: str) -> FilmAnatomy:
    """No anatomy found: empty masks, confidence 0, and why."""
    width, height = orientation.standard_size(film_size)
    w, h = _grid(width, height)
    zeros = np.zeros((h, w), np.float32)
    return FilmAnatomy(film_size, orientation, np.zeros((2, h, w), np.float32), zeros, zeros, zeros, zeros, zeros,
                       np.zeros((2, h, w), np.float32), np.full(w, np.nan, np.float32), "none", 0.0,
                       f"no chest anatomy found ({reason})")


def build_anatomy(standard: np.ndarray, fields: LungFields, film_size: tuple[int, int],
                  orientation: Orientation) -> FilmAnatomy:
    """Anatomy of a film from its standard-display pixels (H, W) in [0, 1] and its lung fields.

    film_size is (W, H) of the stored film; `standard` may be a down-scaled copy of it (same field of view).
    """
    if standard.ndim != 2 or min(standard.shape) < 8:
        raise ValueError(f"anatomy needs an (H, W) image of at least 8x8 pixels, got shape {standard.shape}")
    grid_image = _grid_image(standard)  # (h, w) equalised
    if fields.source != "image" or fields.labels is None:
        return profile_anatomy(standard, film_size, orientation, fields.reason or "no lung fields")
    lungs = _lung_masks(fields, grid_image.shape)  # (2, h, w)
    if min(float(m.sum()) for m in lungs) < 16:
        return profile_anatomy(standard, film_size, orientation, "the lung fields are too small")
    lungs, moved = _refine_domes(grid_image, lungs)
    source = "segmented" if fields.method.startswith("segmented") else "atlas fit"
    contrast = _fit_contrast(fields.method)
    confidence = 0.9 if source == "segmented" else float(np.clip(0.5 + 2.0 * (contrast - 0.12), 0.5, 0.9))
    notes = [f"hemidiaphragm contours follow this film's edges in {moved:.0%} of their columns"]
    diaphragm = _diaphragm_line(lungs > 0.5)  # before the heart is cut out: the domes' medial ends stay
    lungs, heart_note = _heart_from_film(grid_image, lungs)
    notes.append(heart_note)
    return _assemble(lungs, diaphragm, film_size, orientation, source, confidence,
                     f"{fields.method}; masks on a {grid_image.shape[1]}x{grid_image.shape[0]} grid", notes)


def profile_anatomy(standard: np.ndarray, film_size: tuple[int, int], orientation: Orientation,
                    reason: str) -> FilmAnatomy:
    """Thorax and diaphragm from intensity profiles when no lung fields were fitted (confidence 0.3).

    The body is the bright part of the film; the thorax its central columns; the diaphragm the row, between
    45 % and 90 % of the body's height, where the mean brightness of the two lateral thirds of the thorax rises
    most steeply (dark lungs above, bright abdomen below). The "lungs" are the thorax's two halves without a
    mediastinal column, from the upper tenth of the body to the diaphragm.
    """
    import cv2

    image = _grid_image(standard)  # (h, w) equalised
    h, w = image.shape
    smooth = cv2.GaussianBlur(image, (0, 0), 2.0)
    body = smooth > 0.35 * float(smooth.max())
    cols = np.flatnonzero(body.mean(axis=0) > 0.5)
    rows = np.flatnonzero(body.mean(axis=1) > 0.4)
    if len(cols) < 0.3 * w or len(rows) < 0.3 * h:
        return empty_anatomy(film_size, orientation, f"{reason}; no body outline in the intensity profiles")
    left, right, top, bottom = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
    inset = int(0.06 * (right - left))
    wall_l, wall_r = left + inset, right - inset
    third = (wall_r - wall_l) // 3
    lateral = np.concatenate([smooth[:, wall_l:wall_l + third], smooth[:, wall_r - third:wall_r]], axis=1).mean(axis=1)
    rise = np.gradient(cv2.GaussianBlur(lateral[:, None], (0, 0), 3.0).ravel())  # (h,)
    lo, hi = top + int(0.45 * (bottom - top)), top + int(0.90 * (bottom - top))
    if hi <= lo + 2 or rise[lo:hi].max() <= 0.002:
        return empty_anatomy(film_size, orientation, f"{reason}; no diaphragm in the intensity profiles")
    dome = lo + int(np.argmax(rise[lo:hi]))
    apex = top + int(0.10 * (bottom - top))
    if dome - apex < 0.25 * h:
        return empty_anatomy(film_size, orientation, f"{reason}; the thorax in the intensity profiles is too short")
    mid = (wall_l + wall_r) / 2
    half_mediastinum = 0.09 * (wall_r - wall_l)
    lungs_level = float(lateral[apex:dome].mean())
    abdomen_level = float(lateral[dome:min(h, dome + max(2, int(0.15 * h)))].mean())
    middle_level = float(smooth[apex:dome, int(mid - half_mediastinum):int(mid + half_mediastinum) + 1].mean())
    if abdomen_level - lungs_level < PROFILE_CONTRAST or middle_level - lungs_level < PROFILE_CONTRAST:
        return empty_anatomy(film_size, orientation, f"{reason}; no dark lungs between a bright mediastinum and a "
                             f"bright abdomen in the intensity profiles")
    lungs = np.zeros((2, h, w), np.float32)
    lungs[0, apex:dome, wall_l:int(mid - half_mediastinum)] = 1.0
    lungs[1, apex:dome, int(np.ceil(mid + half_mediastinum)):wall_r + 1] = 1.0
    return _assemble(lungs, _diaphragm_line(lungs > 0.5), film_size, orientation, "intensity profiles", 0.3,
                     f"thorax and diaphragm from intensity profiles (no lung fields: {reason})",
                     ["the lung fields are rectangles between the estimated chest walls and the estimated diaphragm; "
                      "findings are placed and drawn approximately"])


# ---------------------------------------------------------------- assembly


def _assemble(lungs: np.ndarray, diaphragm: np.ndarray, film_size: tuple[int, int], orientation: Orientation,
              source: str, confidence: float, method: str, notes: list[str]) -> FilmAnatomy:
    """Mediastinum, heart, thorax, chest wall and recesses from the two lung masks (2, h, w) and the diaphragm line
    (w,)."""
    import cv2

    _, h, w = lungs.shape
    binary = lungs > 0.5  # (2, h, w)
    rows = np.arange(h, dtype=np.float32)[:, None]  # (h, 1)
    below = (rows > diaphragm[None, :]).astype(np.float32)  # (h, w)
    ys = np.flatnonzero(binary.any(axis=(0, 2)))
    top, lung_height = int(ys[0]), float(ys[-1] - ys[0] + 1)
    mediastinum = np.zeros((h, w), bool)
    thorax = np.zeros((h, w), bool)
    for y in range(top, h):
        left_cols, right_cols = np.flatnonzero(binary[0, y]), np.flatnonzero(binary[1, y])
        if len(left_cols) and len(right_cols):
            mediastinum[y, left_cols[-1] + 1:right_cols[0]] = True
            thorax[y, left_cols[0]:right_cols[-1] + 1] = True
        elif len(left_cols) or len(right_cols):
            cols = left_cols if len(left_cols) else right_cols
            thorax[y, cols[0]:cols[-1] + 1] = True
    thorax |= binary.any(axis=0)
    thorax &= below < 0.5
    mediastinum &= below < 0.5
    heart = mediastinum & (rows >= top + HEART_TOP * lung_height)  # the heart borders are the lungs' (see _heart_from_film)
    pair = np.flatnonzero(binary.any(axis=(0, 1)))
    band = max(1, int(round(CHEST_WALL * (pair[-1] - pair[0] + 1))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    chest_wall = (cv2.dilate(thorax.astype(np.uint8), kernel) > 0) & ~thorax & (below < 0.5)
    recesses = np.stack([_recess(binary[i], lateral_high_x=i == 1) for i in (0, 1)]).astype(np.float32)
    soft = [cv2.GaussianBlur(m.astype(np.float32), (0, 0), 0.8) for m in (heart, mediastinum, thorax, chest_wall)]
    return FilmAnatomy(film_size, orientation, lungs.astype(np.float32), *soft, below, recesses,
                       diaphragm.astype(np.float32), source, confidence, method, notes)


def _diaphragm_line(binary: np.ndarray) -> np.ndarray:
    """(w,) row of the diaphragm line: each lung's last row over the columns where that row is no higher than the
    dome's top (the highest last row over the central 20–80 % of the lung's columns) less DOME_BAND of the lung's
    height — the dome and the recess, not the medial border against the heart — joined linearly between the lungs
    (under the heart, from one cardiophrenic angle to the other) and held flat lateral to them."""
    _, h, w = binary.shape
    line = np.full(w, np.nan)
    for lung in binary:
        ys = np.flatnonzero(lung.any(axis=1))
        cols = np.flatnonzero(lung.any(axis=0))
        if not len(cols):
            continue
        last = h - 1 - np.argmax(lung[::-1, cols], axis=0)  # (n,) last lung row
        central = slice(int(0.2 * len(cols)), max(int(0.8 * len(cols)), int(0.2 * len(cols)) + 1))
        dome = last >= last[central].min() - DOME_BAND * (ys[-1] - ys[0] + 1)
        line[cols[dome]] = np.fmax(line[cols[dome]], last[dome])
    known = np.flatnonzero(np.isfinite(line))
    if not len(known):
        return np.full(w, h, np.float32)
    from scipy.ndimage import median_filter

    values = median_filter(line[known], size=max(3, w // 28) | 1, mode="nearest")  # no spikes from mask slivers
    return np.interp(np.arange(w), known, values).astype(np.float32)  # np.interp holds the ends flat


def _recess(lung: np.ndarray, lateral_high_x: bool) -> np.ndarray:
    """The lowest RECESS_HEIGHT of a lung field in its lateral RECESS_WIDTH: the costophrenic recess (h, w) bool."""
    ys, xs = np.nonzero(lung)
    if not len(xs):
        return np.zeros_like(lung)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rows = np.arange(lung.shape[0])[:, None]
    cols = np.arange(lung.shape[1])[None, :]
    low = rows >= y1 - RECESS_HEIGHT * (y1 - y0)
    lateral = cols >= x1 - RECESS_WIDTH * (x1 - x0) if lateral_high_x else cols < x0 + RECESS_WIDTH * (x1 - x0)
    return lung & low & lateral


# ---------------------------------------------------------------- masks from the fitted fields


def _heart_from_film(image: np.ndarray, lungs: np.ndarray) -> tuple[np.ndarray, str]:
    """Take the cardiac silhouette out of the lung fields: per row of the lower lungs, from the mediastinal gap
    outwards while the film stays brighter than halfway between that row's lateral lung and its mediastinum (the
    atlas' mean shape blurs the cardiac notch). Returns the lungs (2, h, w) and a note."""
    import cv2
    from scipy.ndimage import median_filter

    smooth = cv2.GaussianBlur(image, (0, 0), 2.0)
    binary = lungs > 0.5
    h, w = image.shape
    ys = np.flatnonzero(binary.any(axis=(0, 2)))
    if not len(ys):
        return lungs, "no heart borders: no lung fields"
    top, height = ys[0], ys[-1] - ys[0] + 1
    rows = np.arange(int(top + HEART_TOP * height), ys[-1] + 1)
    borders = np.full((len(rows), 2), np.nan)
    for k, y in enumerate(rows):
        left, right = np.flatnonzero(binary[0, y]), np.flatnonzero(binary[1, y])
        if len(left) < 4 or len(right) < 4 or right[0] <= left[-1] + 1:
            continue
        lung_level = np.median(np.concatenate([smooth[y, left[: len(left) // 2]], smooth[y, right[len(right) // 2:]]]))
        middle_level = np.median(smooth[y, left[-1] + 1:right[0]])
        if middle_level - lung_level < 0.05:
            continue
        threshold = (lung_level + middle_level) / 2
        x0 = left[-1]
        while x0 > left[len(left) // 2] and smooth[y, x0] >= threshold:
            x0 -= 1
        x1 = right[0]
        while x1 < right[len(right) // 2] and smooth[y, x1] >= threshold:
            x1 += 1
        borders[k] = (x0 + 1, x1 - 1)
    found = np.isfinite(borders[:, 0])
    if found.sum() < 3:
        return lungs, "heart borders: the lung fields' medial borders (no cardiac edge found on the film)"
    size = max(3, len(rows) // 8) | 1
    for j in (0, 1):
        column = borders[:, j]
        column[~found] = np.interp(np.flatnonzero(~found), np.flatnonzero(found), column[found])
        borders[:, j] = median_filter(column, size=size, mode="nearest")
    heart = np.zeros((h, w), bool)
    for (x0, x1), y in zip(borders, rows):
        heart[y, int(round(x0)):int(round(x1)) + 1] = True
    out = lungs.copy()
    out[:, heart] = 0.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    for index in (0, 1):  # no slivers of lung left along the heart border
        opened = cv2.morphologyEx((out[index] > 0.5).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        out[index] = np.where(opened > 0, np.maximum(out[index], 0.51), np.minimum(out[index], 0.49))
    return out, f"heart borders from this film's cardiac edges in {found.mean():.0%} of the rows below the hila"



def _grid(width: int, height: int) -> tuple[int, int]:
    factor = ANATOMY_SIDE / max(width, height)
    return max(8, round(width * factor)), max(8, round(height * factor))


def _grid_image(standard: np.ndarray) -> np.ndarray:
    """The film on the anatomy grid, percentile-stretched to [0, 1] (float32)."""
    import cv2

    height, width = standard.shape
    w, h = _grid(width, height)
    step = max(1, int(max(height, width) // (2 * ANATOMY_SIDE)))
    small = cv2.resize(np.ascontiguousarray(standard[::step, ::step], np.float32), (w, h), interpolation=cv2.INTER_AREA)
    low, high = np.percentile(small, (1, 99))
    return np.clip((small - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)


def _lung_masks(fields: LungFields, shape: tuple[int, int]) -> np.ndarray:
    """(2, h, w) float32 lung fields on the grid from the fields' label image."""
    import cv2

    h, w = shape
    out = np.zeros((2, h, w), np.float32)
    for index, label in enumerate((1, 2)):
        mask = (fields.labels == label).astype(np.float32)
        out[index] = cv2.resize(cv2.GaussianBlur(mask, (0, 0), 0.7), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def _refine_domes(image: np.ndarray, lungs: np.ndarray) -> tuple[np.ndarray, float]:
    """Move each lung's lower border, per column, to the film's dome edge near it; (2, h, w) and the share moved."""
    import cv2
    from numpy.lib.stride_tricks import sliding_window_view

    smooth = cv2.GaussianBlur(image, (0, 0), 1.5)
    h, w = image.shape
    out = lungs.copy()
    moved, total = 0, 0
    for index in range(2):
        binary = lungs[index] > 0.5
        ys, xs = np.nonzero(binary)
        if not len(xs):
            continue
        height = ys.max() - ys.min() + 1
        reach = max(2, int(round(DOME_SEARCH * height)))
        band = max(1, int(round(0.03 * height)))
        cols = np.unique(xs)
        first = np.argmax(binary[:, cols], axis=0)  # (n,) top row per column
        last = h - 1 - np.argmax(binary[::-1, cols], axis=0)  # (n,) bottom row per column
        best = last.astype(np.float64).copy()
        found = np.zeros(len(cols), bool)
        for k, (col, top, bottom) in enumerate(zip(cols, first, last)):
            candidates = np.arange(max(top + band + 1, bottom - reach), min(h - band - 1, bottom + reach) + 1)
            if not len(candidates):
                continue
            means = sliding_window_view(smooth[:, col], band).mean(axis=-1)  # (h - band + 1,) mean of rows r..r+band-1
            steps = means[candidates + 1] - means[candidates - band]  # mean below y minus mean above y
            k_best = int(np.argmax(steps))
            if steps[k_best] >= DOME_MIN_EDGE:
                best[k], found[k] = candidates[k_best], True
        total += len(cols)
        moved += int(found.sum())
        if found.sum() >= 3:
            smoothed = _smooth_border(cols, best, found, last)
            rows = np.arange(h)[:, None]
            refined = (rows >= first[None, :]) & (rows <= smoothed[None, :])  # (h, n)
            column_masks = np.zeros((h, w), np.float32)
            column_masks[:, cols] = refined
            out[index] = np.where(column_masks > 0, np.maximum(out[index], 0.51), np.minimum(out[index], 0.49))
            out[index] = cv2.GaussianBlur(out[index], (0, 0), 0.6)
    return out, moved / max(total, 1)


def _smooth_border(cols: np.ndarray, rows: np.ndarray, found: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Edge rows where found, the atlas border elsewhere, median- then mean-filtered along the columns."""
    from scipy.ndimage import median_filter, uniform_filter1d

    values = np.where(found, rows, fallback).astype(np.float64)
    size = max(3, len(cols) // 12) | 1
    return uniform_filter1d(median_filter(values, size=size, mode="nearest"), size=size, mode="nearest")


def _fit_contrast(method: str) -> float:
    """The border contrast the atlas fit reported in its method line (0.12 when it is not there)."""
    import re

    found = re.search(r"border contrast (\d+(?:\.\d+)?)", method)
    return float(found.group(1)) if found else 0.12


# ---------------------------------------------------------------- once per film


def film_anatomy(image: Any) -> FilmAnatomy:
    """The anatomy of a film (a LoadedImage, or anything with .array, .original_size and .dicom_info), computed
    once and kept on the object."""
    cached = getattr(image, "__dict__", {}).get("_anatomy")
    if cached is not None:
        return cached
    from ..grounding.lung_fields import estimate_lung_fields
    from ..grounding.orientation import read_orientation

    orientation, _ = read_orientation(getattr(image, "dicom_info", None) or {})
    array = np.asarray(image.array, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"anatomy needs a grayscale (H, W) film, got shape {array.shape}")
    standard = orientation.to_standard(array)
    film_size = (array.shape[1], array.shape[0])
    fields = estimate_lung_fields(standard)
    anatomy = replace(build_anatomy(standard, fields, film_size, orientation), fields=fields)
    if hasattr(image, "__dict__"):
        image.__dict__["_anatomy"] = anatomy  # frozen dataclasses: cache through __dict__
    return anatomy


def fallback_fields(fields: LungFields, anatomy: FilmAnatomy) -> tuple[LungFields, str]:
    """Lung fields for placing points when none were fitted: the profile anatomy's two halves of the thorax
    (standard display pixels), or the coarse centres when there is no thorax either; and where that is, in words."""
    from dataclasses import replace as _replace

    from ..grounding.lung_fields import Box

    if anatomy.source != "intensity profiles":
        width, height = fields.image_size
        top, bottom = (COARSE_SAFE_ROWS[0] - 0.5 * (COARSE_SAFE_ROWS[1] - COARSE_SAFE_ROWS[0])) * height, \
            (COARSE_SAFE_ROWS[2] + 0.5 * (COARSE_SAFE_ROWS[2] - COARSE_SAFE_ROWS[1])) * height
        left, right = fields.image_left, fields.image_right
        boxes = (Box(left.x0, top, left.x1, bottom), Box(right.x0, top, right.x1, bottom))
        method = (f"coarse: 0.30W/0.70W × {'/'.join(f'{v:.2f}H' for v in COARSE_SAFE_ROWS)} (the thesis' lower zone "
                  f"0.80H lies below the diaphragm of most films; no lung fields: {fields.reason})")
        return (_replace(fields, image_left=boxes[0], image_right=boxes[1], method=method),
                "at the coarse centres 0.30W/0.70W × " + "/".join(f"{v:.2f}H" for v in COARSE_SAFE_ROWS)
                + " of the image (the lower zone raised from the thesis' 0.80H, which lies below the diaphragm of most "
                  "films)")
    boxes = []
    for side in PATIENT_SIDES:
        x0, y0, x1, y1 = anatomy.lung_box(side)
        (fx0, fy0), (fx1, fy1) = anatomy.to_standard(x0 - 0.5, y0 - 0.5), anatomy.to_standard(x1 - 0.5, y1 - 0.5)
        boxes.append(Box(fx0, fy0, fx1, fy1))
    method = (f"coarse: zone centres inside a thorax estimated from intensity profiles, above the estimated "
              f"diaphragm (no lung fields: {fields.reason})")
    where = ("in the two halves of a chest outline estimated from brightness profiles, above the estimated "
             "diaphragm, instead of the coarse centres")
    return _replace(fields, image_left=boxes[0], image_right=boxes[1], method=method), where
