"""Lesion points: where the progression text says the change happens, in image pixels."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class LesionPoint:
    """One lesion point (x, y) in pixels of the image it was placed on, with a 3–5 confidence (thesis §4.6)."""

    x: float
    y: float
    confidence: int = 5
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_point(value: LesionPoint | Mapping[str, Any]) -> LesionPoint:
    """Accept a LesionPoint or a dict with keys x, y[, confidence, label]; raise ValueError naming what is wrong."""
    if isinstance(value, LesionPoint):
        point = value
    elif isinstance(value, Mapping):
        missing = [k for k in ("x", "y") if k not in value]
        if missing:
            raise ValueError(f"lesion point {dict(value)!r} lacks {', '.join(missing)}")
        try:
            point = LesionPoint(
                x=float(value["x"]),
                y=float(value["y"]),
                confidence=int(value.get("confidence", 5)),
                label=str(value.get("label", "")),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"lesion point {dict(value)!r} has a non-numeric field: {exc}") from None
    else:
        raise ValueError(f"lesion point must be a LesionPoint or a dict, got {type(value).__name__}: {value!r}")
    if not (math.isfinite(point.x) and math.isfinite(point.y)):
        raise ValueError(f"lesion point has non-finite coordinates x={point.x}, y={point.y}")
    return point


def as_points(values: Iterable[LesionPoint | Mapping[str, Any]] | None) -> list[LesionPoint]:
    """Coerce a sequence of points (None means no points)."""
    return [] if values is None else [as_point(v) for v in values]


def check_inside(points: Iterable[LesionPoint], image_size: tuple[int, int]) -> None:
    """Raise ValueError if any point lies outside an image of size (W, H) (0 <= x < W, 0 <= y < H)."""
    width, height = image_size
    for p in points:
        if not (0 <= p.x < width and 0 <= p.y < height):
            raise ValueError(f"lesion point ({p.x}, {p.y}) lies outside the {width}x{height} image")
