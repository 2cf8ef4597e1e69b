"""The thesis point post-processing (§4.6): drop confidence < 3, merge points closer than 0.03·min(W, H)."""
from __future__ import annotations

import math
from typing import Iterable

from ..points import LesionPoint

MIN_CONFIDENCE = 3
MERGE_FRACTION = 0.03


def keep_confident(points: Iterable[LesionPoint], minimum: int = MIN_CONFIDENCE) -> list[LesionPoint]:
    """Points with confidence ≥ `minimum` (the thesis discards 1 and 2)."""
    return [p for p in points if p.confidence >= minimum]


def merge_close(points: Iterable[LesionPoint], image_size: tuple[int, int],
                fraction: float = MERGE_FRACTION) -> list[LesionPoint]:
    """Repeatedly merge the closest pair nearer than δ = fraction·min(W, H) into the mean of all points it holds.

    The merged point keeps the higher confidence and both labels; order follows the first point of each group.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    delta = fraction * min(width, height)
    groups = [(p, 1) for p in points]  # (mean point, how many originals it holds)
    while True:
        pair = _closest_pair(groups, delta)
        if pair is None:
            return [p for p, _ in groups]
        i, j = pair
        (a, na), (b, nb) = groups[i], groups[j]
        merged = LesionPoint(
            x=(a.x * na + b.x * nb) / (na + nb),
            y=(a.y * na + b.y * nb) / (na + nb),
            confidence=max(a.confidence, b.confidence),
            label=_join_labels(a.label, b.label),
        )
        groups[i] = (merged, na + nb)
        del groups[j]


def to_pixels(points: Iterable[LesionPoint], image_size: tuple[int, int]) -> list[LesionPoint]:
    """Round to integer pixels inside the image (0 ≤ x ≤ W-1, 0 ≤ y ≤ H-1), as the thesis JSON asks."""
    width, height = image_size
    return [LesionPoint(x=min(max(int(round(p.x)), 0), width - 1), y=min(max(int(round(p.y)), 0), height - 1),
                        confidence=int(p.confidence), label=p.label) for p in points]


def rescale(points: Iterable[LesionPoint], from_size: tuple[int, int], to_size: tuple[int, int]) -> list[LesionPoint]:
    """Pixel centres of a (W, H) image → the same anatomy in a (W', H') image of the same field of view."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return [LesionPoint(x=(p.x + 0.5) * sx - 0.5, y=(p.y + 0.5) * sy - 0.5, confidence=p.confidence,
                        label=p.label) for p in points]


def finish(points: Iterable[LesionPoint], image_size: tuple[int, int]) -> list[LesionPoint]:
    """Drop < 3, merge close points, round to pixels inside the image."""
    return to_pixels(merge_close(keep_confident(points), image_size), image_size)


def _closest_pair(groups: list[tuple[LesionPoint, int]], delta: float) -> tuple[int, int] | None:
    best, best_distance = None, delta
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            a, b = groups[i][0], groups[j][0]
            distance = math.hypot(a.x - b.x, a.y - b.y)
            if distance < best_distance:
                best, best_distance = (i, j), distance
    return best


def _join_labels(first: str, second: str) -> str:
    parts = [part for part in first.split("; ") + second.split("; ") if part]
    return "; ".join(dict.fromkeys(parts))
