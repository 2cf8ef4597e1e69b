"""Square framing of a radiograph for the model: pad or centre-crop, then resize; points map both ways."""
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

    def points_to_original(self, points: list[LesionPoint]) -> list[LesionPoint]:
        return [_moved(p, *self.to_original(p.x, p.y)) for p in points]

    def apply(self, array: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(H, W) float array → (side, side) float32, area-resampled (cv2.INTER_AREA when shrinking)."""
        import cv2

        height, width = array.shape
        if (width, height) != tuple(self.original_size):
            raise ValueError(f"array is {width}x{height}, frame expects {self.original_size[0]}x{self.original_size[1]}")
        canvas = np.full((self.square, self.square), fill, dtype=np.float32)  # (square, square)
        src_x0, dst_x0 = max(-self.offset_x, 0), max(self.offset_x, 0)
        src_y0, dst_y0 = max(-self.offset_y, 0), max(self.offset_y, 0)
        w = min(width - src_x0, self.square - dst_x0)
        h = min(height - src_y0, self.square - dst_y0)
        canvas[dst_y0 : dst_y0 + h, dst_x0 : dst_x0 + w] = array[src_y0 : src_y0 + h, src_x0 : src_x0 + w]
        interp = cv2.INTER_AREA if self.side < self.square else cv2.INTER_CUBIC
        out = cv2.resize(canvas, (self.side, self.side), interpolation=interp)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)


def _moved(point: LesionPoint, x: float, y: float) -> LesionPoint:
    return LesionPoint(x=x, y=y, confidence=point.confidence, label=point.label)
