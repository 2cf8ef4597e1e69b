"""What a grounder returns: points in the given image's pixels, its size, who made them, warnings, and where the
lung fields and the patient's sides came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.points import LesionPoint


@dataclass(frozen=True)
class GroundingResult:
    points: list[LesionPoint]
    image_size: tuple[int, int]  # (W, H) of the image the points are in
    grounder: str  # the grounder that produced the points: "rules" or "vlm"
    warnings: list[str] = field(default_factory=list)
    lung_fields: dict[str, Any] = field(default_factory=dict)  # source, method, landmarks (image px)
    orientation: str = ""  # how the patient's sides were read (PatientOrientation, or assumed)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's and /ground's JSON: points, image_size [W, H], grounder, warnings, lung_fields, orientation."""
        return {
            "points": [p.to_dict() for p in self.points],
            "image_size": [int(self.image_size[0]), int(self.image_size[1])],
            "grounder": self.grounder,
            "warnings": list(self.warnings),
            "lung_fields": dict(self.lung_fields),
            "orientation": self.orientation,
        }
