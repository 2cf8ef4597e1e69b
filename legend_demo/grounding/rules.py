"""The deterministic anatomical grounder: the thesis §4.6 rules applied to the text, placed on this image's lungs.

Each mention of the description becomes points: lung findings at the named zone of each named lung, effusion at
the costophrenic angle, pneumothorax at the apicolateral pleura, heart / mediastinum / device tips at their
landmarks. Confidence 5 = explicit side and zone (or lobe, or a finding with its own site) and an explicit
change; 4 = side with partial zone, or a borrowed change/location; 3 = bilateral, diffuse, weakly localised,
or no change word. Negated findings get no point. Output is in pixels of the analysed array.
"""
from __future__ import annotations

from ..core.points import LesionPoint
from .anatomy import landmark_point, zone_point
from .lung_fields import LungFields
from .mentions import Location, Mention, read_mentions

LOBE_CODES = {("right", "upper"): "RUL", ("right", "middle"): "RML", ("right", "lower"): "RLL",
              ("left", "upper"): "LUL", ("left", "middle"): "lingula", ("left", "lower"): "LLL"}
DEVICE_TIPS = {"device_ett": "trachea", "device_enteric": "stomach", "device_line": "svc",
               "device_pacer": "cardiac"}
SITE_ZONES = {"effusion": "costophrenic", "pneumothorax": "apicolateral", "device_chest_tube": "apex",
              "diaphragm": "dome", "bone": "lateral"}  # where the finding goes when the text names no zone
SITE_COMPATIBLE = {  # zones that just restate the site; any other zone the text names wins over the site
    "effusion": (None, "costophrenic", "base", "lower"), "pneumothorax": (None, "apex", "upper"),
    "device_chest_tube": (None,), "diaphragm": (None, "dome", "base", "lower"), "bone": (None,),
    "device_other": (None,)}
NEEDS_SIDE = ("device_chest_tube", "bone", "device_other")  # no point without a named side (a tube or a rib is on one side)
LANDMARK_KINDS = {"cardiac": "cardiac", "mediastinal": "mediastinal"}


def rule_points(text: str, fields: LungFields, anatomy=None) -> tuple[list[LesionPoint], list[str]]:
    """All candidate points for `text` (before the drop/merge post-processing) and warnings.

    `anatomy` (method/film_anatomy.FilmAnatomy, in the same pixels): when given, an effusion's point goes to the
    middle of the pleural space the renderer fills for its severity (above the costophrenic angle, higher for a
    larger one) and a pneumothorax's to the middle of its apicolateral rim (finding_region.py)."""
    points: list[LesionPoint] = []
    warnings: list[str] = []
    for mention in read_mentions(text):
        if mention.negated:
            continue
        for note in dict.fromkeys(loc.note for loc in mention.locations if loc.note):
            warnings.append(note)
        if mention.change is None:
            warnings.append(f"no change word in {mention.clause!r}: its points get confidence 3")
        placed, warning = _mention_points(mention, fields, anatomy)
        points.extend(placed)
        if warning:
            warnings.append(warning)
    return points, warnings


def _mention_points(m: Mention, fields: LungFields, anatomy=None) -> tuple[list[LesionPoint], str]:
    if m.kind in LANDMARK_KINDS or m.kind in DEVICE_TIPS:
        landmark = LANDMARK_KINDS.get(m.kind) or m.landmark or DEVICE_TIPS[m.kind]
        if landmark == "cardiac" and {loc.side for loc in m.locations} == {"right"}:
            landmark = "right_atrium"  # "right heart border", "right ventricle": the patient's right of the heart
        named = m.kind in LANDMARK_KINDS or m.landmark is not None
        x, y = landmark_point(fields, landmark)
        where = landmark.replace("_", " ")
        return [LesionPoint(x, y, _capped(m, 5 if named else 4), _label(m, where))], ""
    site = SITE_ZONES.get(m.kind)
    if m.kind in NEEDS_SIDE and not any(loc.side in ("right", "left") for loc in m.locations):
        return [], f"{m.name!r} without a side: no point placed"
    out = []
    for location in m.locations or (Location(None, None),):
        lateral = location.side in ("right", "left")
        if m.kind in NEEDS_SIDE and not lateral:
            continue
        named_zone = location.zone if location.zone not in SITE_COMPATIBLE.get(m.kind, (None,)) else None
        for side in (location.side,) if lateral else ("right", "left"):
            zone = _lung_zone(named_zone) if named_zone else (site or _lung_zone(location.zone))
            placed = _in_compartment(m, side, anatomy) if m.kind in COMPARTMENT_SITES and not named_zone else None
            x, y = placed or zone_point(fields, side, zone)
            confidence = (5 if (site or location.zone) else 4) if lateral else 3
            where = _where(side, location, None if named_zone else site)
            out.append(LesionPoint(x, y, _capped(m, confidence), _label(m, where)))
    return out, ""


COMPARTMENT_SITES = ("effusion", "pneumothorax")  # placed where the renderer draws them, when the anatomy is known


def _in_compartment(m: Mention, side: str, anatomy) -> tuple[float, float] | None:
    """The middle of the finding's compartment for its severity (standard-display pixels), or None."""
    if anatomy is None or not anatomy.found:
        return None
    from ..method.finding_region import centre, compartment
    from ..method.findings import Finding, _level

    room = compartment(anatomy, Finding(m.kind, side, severity=m.severity, level=_level(m.severity)), (0.0, 0.0))
    found = centre(room.weight) if room.gated else None
    return None if found is None else anatomy.to_standard(*found)


def _lung_zone(zone: str | None) -> str:
    return {None: "middle", "costophrenic": "costophrenic"}.get(zone, zone)


def _capped(m: Mention, confidence: int) -> int:
    """No change word → 3 (weak); a change or location borrowed from another clause → at most 4."""
    if m.change is None:
        return 3
    if m.change_borrowed or m.locations_borrowed:
        return min(confidence, 4)
    return confidence


def _where(side: str, location: Location, site: str | None) -> str:
    if site:
        return f"{side[0].upper()} {site}"
    zone = location.zone or "lung"
    if location.lobe and (side, zone) in LOBE_CODES:
        return LOBE_CODES[(side, zone)]
    prefix = "" if location.side in ("right", "left") else "bilateral, "
    return f"{prefix}{side[0].upper()} {zone}"


def _label(m: Mention, where: str) -> str:
    """"small effusion, increased (L costophrenic)", "3 cm mass, new (RUL)": severity and size as written,
    finding, change word, site."""
    from ..method.findings import size_words

    name = " ".join(part for part in (m.severity, size_words(m.clause, m.name), m.name) if part)
    return f"{name}, {m.change_word or 'no stated change'} ({where})"
