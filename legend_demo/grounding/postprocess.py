"""The thesis point post-processing (§4.6): drop confidence < 3, merge points closer than 0.03·min(W, H)."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..core.points import LesionPoint
from .limits import MAX_POINTS

MIN_CONFIDENCE = 3
MERGE_FRACTION = 0.03


def keep_confident(points: Iterable[LesionPoint], minimum: int = MIN_CONFIDENCE) -> list[LesionPoint]:
    """Points with confidence ≥ `minimum` (the thesis discards 1 and 2)."""
    return [p for p in points if p.confidence >= minimum]


def merge_close(points: Iterable[LesionPoint], image_size: tuple[int, int],
                fraction: float = MERGE_FRACTION) -> list[LesionPoint]:
    """Repeatedly merge the closest pair nearer than δ = fraction·min(W, H) into the mean of all points it holds.

    The merged point keeps the higher confidence and both labels; order follows the first point of each group.
    Identical points (the rules put every mention of one site at the same spot) are merged first, in one
    pass — the closest-pair rule would merge them first anyway — so the pairwise part only sees distinct
    sites; more than MAX_POINTS distinct sites is a ValueError (a grounder gone wrong), never a slow loop.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    delta = fraction * min(width, height)
    groups = _identical_merged(points)  # [(mean point, how many originals it holds)]
    if len(groups) > MAX_POINTS:
        raise ValueError(f"{len(groups)} distinct candidate points; at most {MAX_POINTS} can be merged")
    xs = np.array([p.x for p, _ in groups], np.float64)  # (n,) group means
    ys = np.array([p.y for p, _ in groups], np.float64)
    distance = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])  # (n, n)
    np.fill_diagonal(distance, np.inf)
    alive = list(range(len(groups)))
    while len(alive) > 1:
        sub = distance[np.ix_(alive, alive)]  # (k, k)
        a, b = divmod(int(np.argmin(sub)), len(alive))
        if not sub[a, b] < delta:
            break
        i, j = sorted((alive[a], alive[b]))
        (p, na), (q, nb) = groups[i], groups[j]
        merged = LesionPoint(x=(p.x * na + q.x * nb) / (na + nb), y=(p.y * na + q.y * nb) / (na + nb),
                             confidence=max(p.confidence, q.confidence), label=_join_labels(p.label, q.label))
        groups[i] = (merged, na + nb)
        alive.remove(j)
        xs[i], ys[i] = merged.x, merged.y
        distance[i, :] = distance[:, i] = np.hypot(xs - merged.x, ys - merged.y)
        distance[i, i] = np.inf
    return [groups[k][0] for k in alive]


def _identical_merged(points: Iterable[LesionPoint]) -> list[tuple[LesionPoint, int]]:
    """Points at exactly the same (x, y) merged into one (higher confidence, joined labels), first-seen order."""
    groups: dict[tuple[float, float], tuple[LesionPoint, int]] = {}
    for p in points:
        key = (float(p.x), float(p.y))
        if key in groups:
            q, n = groups[key]
            groups[key] = (LesionPoint(q.x, q.y, max(q.confidence, p.confidence), _join_labels(q.label, p.label)),
                           n + 1)
        else:
            groups[key] = (p, 1)
    return list(groups.values())


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


def _join_labels(first: str, second: str) -> str:
    parts = [part for part in first.split("; ") + second.split("; ") if part]
    return "; ".join(dict.fromkeys(parts))
