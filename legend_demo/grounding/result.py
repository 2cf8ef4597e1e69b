"""What a grounder returns: points in the given image's pixels, its size, who made them, and warnings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..points import LesionPoint


@dataclass(frozen=True)
class GroundingResult:
    points: list[LesionPoint]
    image_size: tuple[int, int]  # (W, H) of the image the points are in
    grounder: str  # the grounder that produced the points: "rules" or "vlm"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON: {"points": [...], "image_size": [W, H], "grounder": ..., "warnings": [...]}."""
        return {
            "points": [p.to_dict() for p in self.points],
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "grounder": self.grounder,
            "warnings": list(self.warnings),
        }
