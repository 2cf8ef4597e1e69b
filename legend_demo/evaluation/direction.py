"""Expected sign of the intensity change inside the lesion mask for a described change (lesion fidelity).

Radiographs are dense-tissue-bright. Opacities (consolidation, nodule/mass, pleural effusion, cardiomegaly) add
attenuation, so they brighten when new/increased and darken when decreased/resolved; a pneumothorax replaces lung
with air, so it does the opposite. "unchanged" has sign 0: its change is reported separately (expected ≈ 0).
"""
from __future__ import annotations

OPACITIES = frozenset({"consolidation", "nodule", "mass", "nodule/mass", "effusion", "pleural effusion",
                       "cardiomegaly", "opacity"})
LUCENCIES = frozenset({"pneumothorax"})
WORSENING = frozenset({"new", "increased"})
IMPROVING = frozenset({"decreased", "resolved"})
UNCHANGED = "unchanged"


def _normalised(text: object, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"change {what} must be a non-empty string, got {text!r}")
    return " ".join(text.strip().lower().replace("_", " ").split())


def expected_sign(change_type: str, direction: str) -> int:
    """+1 if the follow-up should be brighter inside the mask, −1 darker, 0 for "unchanged"."""
    kind, way = _normalised(change_type, "type"), _normalised(direction, "direction")
    if kind in OPACITIES:
        polarity = 1
    elif kind in LUCENCIES:
        polarity = -1
    else:
        raise ValueError(f"unknown change type {change_type!r}; expected one of "
                         f"{', '.join(sorted(OPACITIES | LUCENCIES))}")
    if way in WORSENING:
        return polarity
    if way in IMPROVING:
        return -polarity
    if way == UNCHANGED:
        return 0
    raise ValueError(f"unknown change direction {direction!r}; expected one of "
                     f"{', '.join(sorted(WORSENING | IMPROVING | {UNCHANGED}))}")
