"""What each lesion point stands for: the finding, its side and zone, its severity and size, read from the point's
label (the grounder writes "small effusion, increased (L costophrenic)") or, for a point without one, from the
progression text (seed 004: severity and size read from the report text).

Severity words map to a level on the synthetic data's 1–3 scale (small 1, moderate 2, large 3; trace 0.5,
massive 3.5); a finding without one is read as moderate (level 2) and the reading says so. Sizes ("3 cm",
"15 mm", "2.5-cm") are kept in centimetres. Pure Python.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable

from ..grounding.lexicon import find_terms
from ..core.points import LesionPoint

DEFAULT_LEVEL = 2.0  # no severity word: moderate
SEVERITY_LEVELS = {
    "trace": 0.5, "tiny": 0.5, "minimal": 0.5, "subtle": 0.5, "slight": 0.7, "small": 1.0, "mild": 1.0,
    "small-volume": 1.0, "small-to-moderate": 1.5, "small to moderate": 1.5, "mild-to-moderate": 1.5,
    "mild to moderate": 1.5, "moderate": 2.0, "moderate-sized": 2.0, "moderate-to-large": 2.5,
    "moderate to large": 2.5, "moderately large": 2.5, "large": 3.0, "large-volume": 3.0, "extensive": 3.0,
    "marked": 3.0, "severe": 3.0, "massive": 3.5,
}
NODULE_WORDS = ("nodule", "nodules", "nodular", "pseudonodule", "pseudonodules", "mass", "masses", "masslike",
                "mass-like", "granuloma", "granulomas", "granulomata", "calcified granuloma", "calcified granulomas",
                "calcified nodule", "calcified nodules", "lesion", "lesions")
MASS_WORDS = ("mass", "masses", "masslike", "mass-like")
LUCENT_WORDS = ("lucency", "lucencies", "bulla", "bullae", "bleb", "blebs", "cyst", "cysts", "cavity", "cavitation",
                "cavitary lesion", "emphysema", "emphysematous change", "emphysematous changes", "hyperinflation",
                "hyperinflated lung", "hyperinflated lungs", "hyperexpanded lung", "hyperexpanded lungs",
                "hyperexpansion", "copd")
KINDS = ("airspace", "nodule", "lucent", "diffuse", "effusion", "pneumothorax", "cardiac", "mediastinal", "other")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*-?\s*(cm|mm)\b", re.IGNORECASE)
_LABEL = re.compile(r"^(?P<finding>[^,(]+?)(?:,\s*(?P<change>[^(]*?))?\s*\((?P<site>[^)]*)\)\s*$")
_SITE_LOBES = {"RUL": ("right", "upper"), "RML": ("right", "middle"), "RLL": ("right", "lower"),
               "LUL": ("left", "upper"), "lingula": ("left", "middle"), "LLL": ("left", "lower")}


@dataclass(frozen=True)
class Finding:
    """One point's finding as read: kind (KINDS), patient side, zone, lobe named?, severity word and level, size."""

    kind: str
    side: str | None = None  # "right" / "left" (the patient's) or None
    zone: str | None = None  # "upper", "middle", "lower", "apex", "base", …
    lobe: bool = False  # the zone is a lobe ("RLL"), not a zone of the film
    severity: str | None = None  # the word as written
    level: float = DEFAULT_LEVEL
    size_cm: float | None = None
    change: str | None = None  # new, worse, persistent, better, resolved
    words: str = ""  # what was read
    source: str = "text"  # "label", "text" or "none"

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line: 'large effusion (right), level 3 from "large"' …"""
        severity = f'"{self.severity}" → level {self.level:g}' if self.severity else f"no severity word → level {self.level:g}"
        size = f", {self.size_cm:g} cm" if self.size_cm else ""
        return f"{self.name()}: {severity}{size} (read from the {self.source} {self.words!r})"

    def name(self) -> str:
        """The finding and where it is: 'effusion right base', 'nodule right upper lobe'."""
        parts = [self.kind]
        if self.side:
            parts.append(f"{self.side} {self.zone or ''}".strip() + (" lobe" if self.lobe else ""))
        return " ".join(parts)


def finding_of(point: LesionPoint, text: str = "", image_width: float | None = None) -> Finding:
    """The finding of one point: from its label when the label names one, else the text's finding on the point's
    side (a side word in the label, else image left = the patient's right when `image_width` is given), else the
    text's first finding."""
    if point.label:
        found = read_label(point.label)
        if found is not None:
            return found
    candidates = read_text(text)
    if not candidates:
        return Finding("other", words=point.label or text[:80], source="none")
    side = next((m.term.side or m.term.value for m in find_terms(point.label or "")
                 if (m.term.side or m.term.value) in ("right", "left") and m.term.kind in ("side", "zone")), None)
    if side is None and image_width:
        side = "right" if point.x < image_width / 2 else "left"
    same = [c for c in candidates if c.side in (side, None)] if side else []
    return (same or candidates)[0]


def findings_of(points: Iterable[LesionPoint], text: str = "", image_width: float | None = None) -> list[Finding]:
    """finding_of for every point (the text is read once per call of finding_of; texts are short)."""
    return [finding_of(point, text, image_width) for point in points]


def read_label(label: str) -> Finding | None:
    """A grounder label ("3 cm mass, new (RUL)"; merged labels joined by "; " → the first) → Finding, or None."""
    first = label.split("; ")[0].strip()
    match = _LABEL.match(first)
    if match is None:
        return _from_words(first, "label")
    finding = _from_words(match.group("finding"), "label", words=first)
    if finding is None:
        return None
    side, zone, lobe = _site(match.group("site"))
    change = _change(match.group("change") or "")
    return Finding(finding.kind, side or finding.side, zone or finding.zone, lobe or finding.lobe, finding.severity,
                   finding.level, finding.size_cm, change or finding.change, first, "label")


def read_text(text: str) -> list[Finding]:
    """Every non-negated finding of a progression text, in reading order."""
    from ..grounding.mentions import read_mentions

    out = []
    for mention in read_mentions(text or ""):
        if mention.negated:
            continue
        location = mention.locations[0] if mention.locations else None
        side = location.side if location is not None and location.side in ("right", "left") else None
        severity = mention.severity
        size = _size_before(mention.clause, mention.name)
        out.append(Finding(_kind(mention.kind, mention.name, size), side, location.zone if location else None,
                           bool(location and location.lobe), severity, _level(severity), size, mention.change,
                           mention.clause.strip(), "text"))
    return out


def _from_words(phrase: str, source: str, words: str | None = None) -> Finding | None:
    """Kind, severity and size of a phrase such as "small effusion" or "3 cm mass"; None without a finding word."""
    terms = find_terms(phrase)
    finding = next((m for m in terms if m.term.kind == "finding"), None)
    if finding is None:
        return None
    severity = next((m.text.lower() for m in terms if m.term.kind == "severity"), None)
    side = next((m.term.value for m in terms if m.term.kind == "side" and m.term.value in ("right", "left")), None)
    size = _size(phrase)
    return Finding(_kind(finding.term.value, finding.text.lower(), size), side, None, False, severity,
                   _level(severity), size, None, words or phrase, source)


def _kind(lexicon_kind: str, name: str, size_cm: float | None = None) -> str:
    name = name.lower()
    if lexicon_kind == "lung":
        if name in LUCENT_WORDS:
            return "lucent"
        if name in NODULE_WORDS or size_cm is not None:
            return "nodule"
        return "airspace"
    if lexicon_kind == "lung_bilateral":
        return "lucent" if name in LUCENT_WORDS else "diffuse"
    if lexicon_kind in ("effusion", "pneumothorax", "mediastinal"):
        return lexicon_kind
    if lexicon_kind == "cardiac":
        return "cardiac"
    return "other"


def _level(severity: str | None) -> float:
    return SEVERITY_LEVELS.get((severity or "").lower(), DEFAULT_LEVEL)


def _size(text: str) -> float | None:
    """The first size written ("3 cm", "15 mm") in centimetres, None without one (absurd sizes are ignored)."""
    match = _SIZE.search(text or "")
    if match is None:
        return None
    value = float(match.group(1)) / (10.0 if match.group(2).lower() == "mm" else 1.0)
    return value if 0.1 <= value <= 20.0 else None


def size_words(clause: str, name: str) -> str | None:
    """The size as written in the few words before the finding's name ("a 3 cm right upper lobe mass" → "3 cm")."""
    at = clause.lower().find(name.lower())
    if at < 0:
        return None
    sizes = list(_SIZE.finditer(clause[max(0, at - 40):at]))
    return sizes[-1].group(0) if sizes and _size(sizes[-1].group(0)) else None


def _size_before(clause: str, name: str) -> float | None:
    """The size written before the finding's name, in centimetres, else None."""
    words = size_words(clause, name)
    return _size(words) if words else None


def _site(site: str) -> tuple[str | None, str | None, bool]:
    """"RLL" → (right, lower, lobe); "L costophrenic" → (left, costophrenic); "bilateral, R base" → (right, base)."""
    site = site.split(",")[-1].strip()
    if site in _SITE_LOBES:
        side, zone = _SITE_LOBES[site]
        return side, zone, True
    parts = site.split()
    side = {"R": "right", "L": "left"}.get(parts[0]) if parts else None
    zone = parts[1] if side and len(parts) > 1 else None
    return side, zone, False


def _change(words: str) -> str | None:
    found = next((m.term.value for m in find_terms(words) if m.term.kind == "change"), None)
    return found
