"""Point labels in a clinician's words: "finding, change (zone)".

The rules grounder writes labels with the change word as found in the text and a compact site
("airspace opacity, newly (RLL)", "effusion, increased (L costophrenic)"). The editor shows and edits the three
parts separately, so labels are put into one form here: the change as its category's word ("newly" → "new",
"worsening" → "increased"), the zone spelled out ("RLL" → "right lower lobe", "R middle" → "right mid zone").
A label that does not have this shape is kept as it is.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from ..core.points import LesionPoint

CHANGE_WORDS = {"new": "new", "worse": "increased", "persistent": "unchanged", "better": "decreased",
                "resolved": "resolved", "repositioned": "repositioned"}  # lexicon change category → shown word
NO_CHANGE = "change not stated"
LOBES = {"RUL": "right upper lobe", "RML": "right middle lobe", "RLL": "right lower lobe",
         "LUL": "left upper lobe", "LLL": "left lower lobe", "lingula": "lingula"}
SIDES = {"R": "right", "L": "left"}
ZONE_WORDS = {"upper": "upper zone", "middle": "mid zone", "lower": "lower zone", "costophrenic": "costophrenic angle",
              "lung": "lung", "cardiac": "heart", "mediastinal": "mediastinum"}
_LABEL = re.compile(r"^(?P<finding>.*?), (?P<change>[^,()]*) \((?P<zone>[^()]*)\)$")


def split_label(label: str) -> tuple[str, str, str] | None:
    """"finding, change (zone)" → (finding, change, zone); None for any other shape."""
    match = _LABEL.match(label.strip())
    return (match["finding"], match["change"], match["zone"]) if match else None


def clinician_label(label: str) -> str:
    """A grounder label in clinician words (module docstring); other labels unchanged."""
    parts = split_label(label)
    if parts is None:
        return label
    finding, change, zone = parts
    return f"{finding}, {change_word(change)} ({zone_words(zone)})"


def change_word(word: str) -> str:
    """The change category's word for a change word of the text ("newly" → "new"); unknown words unchanged."""
    from ..grounding.lexicon import find_terms

    if word.strip() in ("", "no stated change"):
        return NO_CHANGE
    categories = [m.term.value for m in find_terms(word) if m.term.kind == "change"]
    return CHANGE_WORDS.get(categories[0], word) if categories else word


def zone_words(zone: str) -> str:
    """"RLL" → "right lower lobe", "R middle" → "right mid zone", "bilateral, L lower" → "left lower zone,
    bilateral", "cardiac" → "heart"; anything else unchanged."""
    text = zone.strip()
    suffix = ""
    if text.startswith("bilateral, "):
        text, suffix = text.removeprefix("bilateral, "), ", bilateral"
    if text in LOBES:
        return LOBES[text] + suffix
    head, _, rest = text.partition(" ")
    if head in SIDES and rest:
        return f"{SIDES[head]} {ZONE_WORDS.get(rest, rest)}{suffix}"
    return ZONE_WORDS.get(text, text) + suffix


def clinician_points(points: Iterable[LesionPoint]) -> list[LesionPoint]:
    return [replace(p, label=clinician_label(p.label)) for p in points]


def label_from_text(point: LesionPoint, mentions: list[LesionPoint], others: Iterable[LesionPoint]) -> LesionPoint:
    """A point placed by hand takes its finding from the description: the label and confidence of the nearest
    mention the other points do not already show (else of the nearest mention). Without any mention the label
    stays empty and the confidence is 3 (the editor asks for the finding)."""
    if not mentions:
        return replace(point, label="", confidence=3)
    shown = {p.label for p in others}
    pool = [m for m in mentions if m.label not in shown] or mentions
    nearest = min(pool, key=lambda m: (m.x - point.x) ** 2 + (m.y - point.y) ** 2)
    return replace(point, label=nearest.label, confidence=nearest.confidence)
