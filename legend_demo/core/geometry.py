"""Square framing of a radiograph for the model: pad or centre-crop, then resize; points and pixels map both ways.

Shrinking (the usual case) never builds the full-resolution square canvas: the area resampling is separable, so
it is applied as two sparse (side × H) and (side × W) matrices to the film and the padding's share is added
analytically; memory stays O(H·W + side²) whatever the aspect ratio. `sample_model_view` is the exact inverse
used by compositing: it reads a model-view image at film pixel centres inside a box of the film.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from .points import LesionPoint

FrameMode = Literal["pad", "crop"]


@dataclass(frozen=True)
class SquareFrame:
    """original (W, H) → square of `square` px placed at (offset_x, offset_y) → resized to `side` px.

    pad: the image sits inside a larger square (offsets ≥ 0). crop: the square is a centre window (offsets ≤ 0).
    """

    original_size: tuple[int, int]
    mode: FrameMode
    square: int
    offset_x: int
    offset_y: int
    side: int

    @classmethod
    def fit(cls, original_size: tuple[int, int], side: int, mode: FrameMode = "pad") -> "SquareFrame":
        width, height = original_size
        if width <= 0 or height <= 0 or side <= 0:
            raise ValueError(f"cannot frame a {width}x{height} image to side {side}")
        if mode == "pad":
            square = max(width, height)
        elif mode == "crop":
            square = min(width, height)
        else:
            raise ValueError(f"frame mode must be 'pad' or 'crop', got {mode!r}")
        return cls(original_size, mode, square, (square - width) // 2, (square - height) // 2, side)

    @property
    def scale(self) -> float:
        return self.side / self.square

    def to_model(self, x: float, y: float) -> tuple[float, float]:
        """Original pixel → model pixel."""
        return (x + self.offset_x) * self.scale, (y + self.offset_y) * self.scale

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Model pixel → original pixel."""
        return x / self.scale - self.offset_x, y / self.scale - self.offset_y

    def points_to_model(self, points: list[LesionPoint]) -> list[LesionPoint]:
        return [_moved(p, *self.to_model(p.x, p.y)) for p in points]

    def apply(self, array: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(H, W) float array → (side, side) float32: exact area averaging when shrinking, bicubic when enlarging."""
        height, width = array.shape
        if (width, height) != tuple(self.original_size):
            raise ValueError(f"array is {width}x{height}, frame expects {self.original_size[0]}x{self.original_size[1]}")
        if self.side < self.square:
            out = self._area_shrink(np.asarray(array, dtype=np.float32), fill)
        else:
            out = self._enlarge(array, fill)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def sample_model_view(self, view: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Bicubic read of a (side, side) model-view image at the film pixel centres of box (x0, y0, x1, y1).

        Film pixel centre c + ½ (square-canvas units) sits at model pixel (c + ½)·scale − ½: the inverse of apply().
        Returns (y1 − y0, x1 − x0) float32; only the box is allocated.
        """
        import cv2

        x0, y0, x1, y1 = box
        if view.shape != (self.side, self.side):
            raise ValueError(f"model view is {view.shape}, frame expects ({self.side}, {self.side})")
        if not (0 <= x0 < x1 <= self.original_size[0] and 0 <= y0 < y1 <= self.original_size[1]):
            raise ValueError(f"box {box} is not inside the {self.original_size[0]}x{self.original_size[1]} film")
        s = self.scale
        affine = np.array(
            [[s, 0.0, (x0 + self.offset_x + 0.5) * s - 0.5], [0.0, s, (y0 + self.offset_y + 0.5) * s - 0.5]]
        )  # box pixel (i, j) → model pixel
        return cv2.warpAffine(
            np.asarray(view, dtype=np.float32), affine, (x1 - x0, y1 - y0),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )

    def _area_shrink(self, array: np.ndarray, fill: float) -> np.ndarray:
        """Area average of the padded/cropped square canvas without building it: A_y · F · A_xᵀ + fill share."""
        height, width = array.shape
        rows = _area_matrix(height, self.offset_y, self.square, self.side)  # (side, H) sparse
        cols = _area_matrix(width, self.offset_x, self.square, self.side)  # (side, W) sparse
        out = np.asarray((cols @ np.asarray(rows @ array).T).T, dtype=np.float64)  # (side, side)
        if fill:
            film_share = np.outer(np.asarray(rows.sum(axis=1)).ravel(), np.asarray(cols.sum(axis=1)).ravel())
            out += fill * (1.0 - film_share)  # the padding's share of each model pixel
        return out

    def _enlarge(self, array: np.ndarray, fill: float) -> np.ndarray:
        """Films smaller than the model view: the (small) square canvas, then bicubic up-sampling."""
        import cv2

        height, width = array.shape
        canvas = np.full((self.square, self.square), fill, dtype=np.float32)  # (square, square), square ≤ side
        src_x0, dst_x0 = max(-self.offset_x, 0), max(self.offset_x, 0)
        src_y0, dst_y0 = max(-self.offset_y, 0), max(self.offset_y, 0)
        w = min(width - src_x0, self.square - dst_x0)
        h = min(height - src_y0, self.square - dst_y0)
        canvas[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = array[src_y0 : src_y0 + h, src_x0 : src_x0 + w]
        return cv2.resize(canvas, (self.side, self.side), interpolation=cv2.INTER_CUBIC)

    def to_dict(self) -> dict:
        return asdict(self)


def _area_matrix(n_src: int, offset: int, square: int, side: int):
    """Sparse (side, n_src) weights of film pixel j (canvas cell j + offset) in model pixel i (cells [i·f, (i+1)·f)).

    f = square / side ≥ 1, so a film pixel overlaps at most two model pixels; cells outside the square get none.
    """
    from scipy.sparse import csr_matrix

    f = square / side
    cell = np.arange(n_src, dtype=np.float64) + offset  # (n_src,) canvas start of each film pixel
    inside = (cell >= 0) & (cell < square)
    first = np.floor(cell / f)  # model pixel holding the cell's start
    share_first = np.minimum(cell + 1, (first + 1) * f) - cell  # overlap with it (≤ 1)
    src = np.concatenate([np.arange(n_src), np.arange(n_src)])
    dst = np.concatenate([first, first + 1]).astype(np.int64)
    weight = np.concatenate([share_first, 1.0 - share_first]) / f
    keep = np.concatenate([inside, inside]) & (weight > 1e-12) & (dst < side)
    return csr_matrix((weight[keep].astype(np.float32), (dst[keep], src[keep])), shape=(side, n_src))


def _moved(point: LesionPoint, x: float, y: float) -> LesionPoint:
    return LesionPoint(x=x, y=y, confidence=point.confidence, label=point.label)
