"""Paired probes of one case (issue 10): does the change follow the points and the text's direction?

- mirrored: the same request with every lesion point mirrored left–right (x → W − x); lesion fidelity is still
  measured at the true mask, so a model that draws where the points are scores lower. The edit region W (and
  keep-region blending) follows the points too, so this probes the whole product (points → bias, W → film);
  the model's own share is the full − (s = 0) difference at the true points.
- opposite: the same finding described in the opposite direction ("New X" ↔ "X has resolved"); fidelity is
  measured with the case's own expected sign, so a model that follows the text scores lower (negative).
"""
from __future__ import annotations

from ..core.points import LesionPoint
from .direction import IMPROVING, WORSENING

FINDINGS = {
    "consolidation": "{side} {lobe} lobe consolidation",
    "nodule": "{side} {lobe} lobe nodule",
    "effusion": "{side} pleural effusion",
    "pneumothorax": "{side} pneumothorax",
    "cardiomegaly": "cardiomegaly",
}


def mirrored_points(points: list[LesionPoint], width: int) -> list[LesionPoint]:
    """Points reflected about the vertical midline of a `width`-px image (kept inside: x < W)."""
    return [LesionPoint(min(width - p.x, width - 1e-3), p.y, p.confidence, p.label) for p in points]


def opposite_text(change: dict) -> str:
    """A one-sentence description of the same finding changing the other way."""
    kind, direction = change.get("type"), change.get("direction")
    if kind not in FINDINGS:
        raise ValueError(f"no wording for change type {kind!r}; known: {', '.join(FINDINGS)}")
    finding = FINDINGS[kind].format(side=change.get("side") or "", lobe=change.get("lobe") or "").strip()
    if direction in WORSENING:
        return f"Interval resolution of the {finding}."
    if direction in IMPROVING:
        return f"New {finding}." if kind != "cardiomegaly" else "New cardiomegaly: the heart is now enlarged."
    raise ValueError(f"no opposite for direction {direction!r}")
