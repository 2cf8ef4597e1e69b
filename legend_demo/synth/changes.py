"""What changes between the reference and the follow-up: type, patient side, lobe, direction, severity levels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lesions import LESION_TYPES, LEVELS
from .volume import LOBE_STRUCTURES

DIRECTIONS = ("new", "increased", "decreased", "resolved", "unchanged")
SEVERITY_NAMES = {1: "mild", 2: "moderate", 3: "severe"}
TYPE_WEIGHTS = {"consolidation": 0.3, "nodule": 0.2, "effusion": 0.2, "pneumothorax": 0.15, "cardiomegaly": 0.15}


@dataclass(frozen=True)
class ChangeSpec:
    """One pair's change; levels 0 (absent) … 3 in the reference and the follow-up."""

    kind: str
    side: str  # patient side: right / left / none
    lobe: str | None  # upper / middle / lower for consolidation and nodules, else None
    direction: str
    level_ref: int
    level_flu: int

    @property
    def severity(self) -> str:
        """Severity of the larger state (the lesion as it is at its worst in the pair)."""
        return SEVERITY_NAMES[max(self.level_ref, self.level_flu)]


def levels_for(direction: str, rng: np.random.Generator) -> tuple[int, int]:
    """(reference level, follow-up level) consistent with the direction."""
    if direction == "new":
        return 0, int(rng.choice(LEVELS))
    if direction == "resolved":
        return int(rng.choice(LEVELS)), 0
    if direction == "unchanged":
        level = int(rng.choice(LEVELS))
        return level, level
    low, high = sorted(int(v) for v in rng.choice(LEVELS, size=2, replace=False))
    if direction == "increased":
        return low, high
    if direction == "decreased":
        return high, low
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def sample_change(rng: np.random.Generator, kinds: tuple[str, ...] = LESION_TYPES,
                  p_unchanged: float = 0.05) -> ChangeSpec:
    """Draw a change: type by TYPE_WEIGHTS among `kinds`, side, lobe, direction, levels."""
    unknown = [k for k in kinds if k not in LESION_TYPES]
    if unknown or not kinds:
        raise ValueError(f"change types must be a non-empty subset of {LESION_TYPES}, got {kinds}")
    if not 0.0 <= p_unchanged < 1.0:
        raise ValueError(f"p_unchanged must be in [0, 1), got {p_unchanged}")
    weights = np.array([TYPE_WEIGHTS[k] for k in kinds])
    kind = str(kinds[rng.choice(len(kinds), p=weights / weights.sum())])
    side = "none" if kind == "cardiomegaly" else str(rng.choice(["right", "left"]))
    lobe = None
    if kind in ("consolidation", "nodule"):
        lobes = [lobe for (s, lobe) in LOBE_STRUCTURES if s == side]
        lobe = str(lobes[rng.integers(len(lobes))])
    changing = ("new", "increased", "decreased", "resolved")
    direction = "unchanged" if rng.random() < p_unchanged else str(rng.choice(changing))
    level_ref, level_flu = levels_for(direction, rng)
    return ChangeSpec(kind, side, lobe, direction, level_ref, level_flu)
