"""The words the rules grounder reads: sides, zones, lobes, findings, change words, negations (thesis §4.6).

Each phrase maps to a `Term`; `find_terms` returns the non-overlapping terms of a text in reading order,
preferring the longest phrase at each position ("no change" beats "no", "no longer" beats "no").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

TermKind = Literal["side", "zone", "finding", "change", "negation", "clause_negation", "landmark", "severity"]


@dataclass(frozen=True)
class Term:
    """One lexicon entry. `value` depends on kind: a side, a zone, a finding kind, a change category, a landmark."""

    kind: TermKind
    value: str
    name: str = ""  # display name for findings ("consolidation"), change words ("new")
    side: str | None = None  # side implied by the phrase ("lingula" → left, "bibasilar" → both)
    lobe: bool = False  # the phrase named a lobe (label "RLL" rather than "R lower")


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    term: Term
    text: str


def _split_top_level(phrases: str) -> list[str]:
    """Split "a|b|(?:c|d)e" on the bars outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in phrases:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _entries() -> list[tuple[str, Term]]:
    e: list[tuple[str, Term]] = []

    def add(kind: TermKind, value: str, phrases: str, name: str = "", side: str | None = None, lobe: bool = False):
        for phrase in _split_top_level(phrases):
            e.append((phrase, Term(kind, value, name or phrase, side, lobe)))

    # Patient sides (the thesis convention: patient right = image left on PA/AP).
    add("side", "right", r"right|rt|right-sided|dextro")
    add("side", "left", r"left|lt|left-sided")
    add("side", "both", r"bilateral|bilaterally|both|diffuse|diffusely|multifocal|widespread|scattered|bilateral lungs")
    # Zones and lobes.
    add("zone", "upper", r"upper|upper zones?|upper lungs?|upper fields?")
    add("zone", "upper", r"upper lobes?", lobe=True)
    add("zone", "middle", r"mid|middle|mid zones?|mid lungs?|mid-lung|midlung|middle zones?")
    add("zone", "middle", r"middle lobe", side="right", lobe=True)
    add("zone", "middle", r"lingula|lingular", side="left", lobe=True)
    add("zone", "lower", r"lower|lower zones?|lower lungs?|lower fields?")
    add("zone", "lower", r"lower lobes?", lobe=True)
    add("zone", "apex", r"apex|apices|apical|apically")
    add("zone", "base", r"base|bases|basal|basilar|basally")
    add("zone", "base", r"bibasilar|bibasal|bibasally", side="both")
    add("zone", "apex", r"biapical", side="both")
    add("zone", "perihilar", r"perihilar|hilar|hilum|hila|parahilar|peribronchial")
    add("zone", "infrahilar", r"infrahilar")
    add("zone", "suprahilar", r"suprahilar|paratracheal")
    add("zone", "retrocardiac", r"retrocardiac|behind the heart", side="left")
    add("zone", "costophrenic", r"costophrenic|costophrenic angles?|cp angles?|costophrenic sulcus|"
        r"costophrenic recess(?:es)?|lateral recess(?:es)?")
    add("zone", "cardiophrenic", r"cardiophrenic|cardiophrenic angles?")
    add("zone", "dome", r"hemidiaphragms?|hemi-diaphragms?|diaphragms?|diaphragmatic|subpulmonic|"
        r"infradiaphragmatic|subdiaphragmatic")
    add("zone", "axillary", r"axilla|axillary|axilar")
    add("zone", "middle", r"minor fissure|horizontal fissure", side="right")
    for code, side, zone in (("rul", "right", "upper"), ("rml", "right", "middle"), ("rll", "right", "lower"),
                             ("lul", "left", "upper"), ("lll", "left", "lower")):
        e.append((code, Term("zone", zone, code.upper(), side, lobe=True)))
    # Findings that live in a lung zone.
    add("finding", "lung", r"opacity|opacities|opacification|consolidation|consolidations|consolidative|"
        r"atelectasis|atelectatic|infiltrate|infiltrates|infiltration|pneumonia|pneumonitis|airspace disease|"
        r"airspace opacity|airspace opacities|airspace process|ground[- ]glass|ground glass pattern|"
        r"alveolar pattern|interstitial pattern|reticulonodular|nodule|nodules|nodular|pseudonodules?|"
        r"mass|masses|masslike|mass-like|lesion|lesions|scar|scars|scarring|fibrosis|"
        r"fibrotic changes?|interstitial markings|interstitial opacities|reticular|collapse|granulomas?|"
        r"calcified granulomas?|cavity|cavitation|cavitary lesion|abscess|infection|aspiration|haziness|"
        r"density|densities|plate-like atelectasis|volume loss|bronchiectasis|adenopathy|lymphadenopathy|"
        r"hilar enlargement|hilar prominence|calcified lymph nodes?|lymph nodes?|bulla|bullae|bleb|blebs|"
        r"granulomata|calcification|calcifications|calcified nodules?|lucency|lucencies|cyst|cysts")
    add("finding", "lung_bilateral", r"edema|oedema|pulmonary edema|vascular congestion|congestion|"
        r"interstitial edema|pulmonary vascular congestion|emphysema|emphysematous changes?|hyperinflation|"
        r"hyperinflated lungs?|hyperexpanded lungs?|hyperexpansion|copd")
    add("finding", "effusion", r"effusion|effusions|pleural fluid|hydrothorax|blunting|pleural thickening|"
        r"pleural plaques?|loculated fluid|hemothorax|empyema|blunted|fluid")
    add("finding", "diaphragm", r"elevation|elevated|eventration|flattening|flattened|tenting|"
        r"diaphragmatic paralysis")
    add("finding", "bone", r"fracture|fractures|fractured|lytic lesion|sclerotic lesion|callus")
    add("finding", "device_other", r"clips?|surgical clips?|foreign body|foreign bodies|suture material|sutures|"
        r"stimulator|nerve stimulator|staples|surgical staples|coil|coils|stent|stents")
    add("finding", "pneumothorax", r"pneumothorax|pneumothoraces|ptx")
    add("finding", "cardiac", r"cardiomegaly|cardiac silhouette|heart size|cardiac size|heart|"
        r"cardiomediastinal silhouette|pericardial effusion|cardiac enlargement")
    add("finding", "mediastinal", r"mediastinal widening|widened mediastinum|mediastinum|mediastinal|"
        r"mediastinal contours?|aortic knob|aorta|tortuous aorta")
    add("finding", "device_ett", r"endotracheal tube|et tube|ett|tracheostomy tube|tracheostomy")
    add("finding", "device_enteric", r"enteric tube|ng tube|nasogastric tube|og tube|orogastric tube|"
        r"feeding tube|dobhoff")
    add("finding", "device_line", r"central line|central venous catheter|picc|picc line|ij line|"
        r"internal jugular line|subclavian line|port|port-a-cath|swan-ganz|catheter")
    add("finding", "device_chest_tube", r"chest tube|chest tubes|pigtail|pleural catheter|pleural drain")
    add("finding", "device_pacer", r"pacemaker|pacer|icd|pacing leads?|leads")
    # Landmarks that locate a device tip.
    add("landmark", "trachea", r"trachea|tracheal|thoracic inlet")
    add("landmark", "carina", r"carina")
    add("landmark", "svc", r"svc|superior vena cava|cavoatrial junction|brachiocephalic")
    add("landmark", "right_atrium", r"right atrium|atrium")
    add("landmark", "stomach", r"stomach|gastric|below the diaphragm|below the hemidiaphragm")
    # Change words (thesis §4.6: worse, persistent, better, resolved all count as a change).
    add("change", "new", r"new|newly|interval development|developed|developing|appearance|appeared|emerging|"
        r"recurrent|recurred|recurrence|reaccumulat\w*|re-accumulat\w*")
    add("change", "worse", r"increased|increase|increasing|enlarging|enlarged in size|larger|worse|worsened|"
        r"worsening|progressed|progression|progressive|extending|extension|more|greater|accumulat\w*|"
        r"grown|growing|evolving")
    add("change", "persistent", r"persistent|persists|persisting|persisted|unchanged|stable|stably|similar|"
        r"again seen|again noted|again demonstrated|redemonstrated|re-demonstrated|remains|remained|"
        r"continued|persistently|"
        r"(?:no|without|not)\s+(?:significant(?:ly)?\s+|appreciabl[ey]\s+|interval\s+|substantial\s+)*chang(?:e|ed)")
    add("change", "better", r"improved|improving|improvement|decreased|decrease|decreasing|smaller|less|"
        r"diminished|reduced|reduction|regressed|regression|partially resolved|resolving|clearing|normalized")
    add("change", "resolved", r"resolved|resolution|cleared|no longer seen|no longer visible|no longer present|"
        r"no longer|disappeared|returned to normal|removed|removal|not (?:seen|visible|identified|appreciated)")
    add("change", "repositioned", r"placed|placement|inserted|insertion|repositioned|advanced|withdrawn|retracted")
    # Negations: a forward scope ("no pneumothorax", "without effusion") and whole-clause ones ("is normal").
    add("negation", "negation", r"no|not|without|negative for|free of|clear of|absence of|absent|no evidence of|"
        r"no new|rather than|ruled out")
    # Severity words stay in the point label ("small effusion"); they never decide where a point goes.
    add("severity", "severity", r"trace|tiny|small|small-to-moderate|small to moderate|mild|mild-to-moderate|"
        r"mild to moderate|moderate|moderate-sized|moderate-to-large|moderate to large|large|massive|severe|"
        r"extensive|minimal|subtle|slight|marked|moderately large|large-volume|small-volume")
    add("clause_negation", "clause_negation", r"normal|within normal limits|clear|unremarkable|no acute")
    return e


_CASE_SENSITIVE = [  # single-letter side abbreviations only when upper case ("R lower lobe", "L base")
    (re.compile(r"(?<![\w-])R(?![\w-])"), Term("side", "right", "R")),
    (re.compile(r"(?<![\w-])L(?![\w-])"), Term("side", "left", "L")),
]
_PATTERNS = [(re.compile(rf"(?<![\w-]){phrase}(?![\w-])", re.IGNORECASE), term) for phrase, term in _entries()]


@lru_cache(maxsize=4096)
def find_terms(text: str) -> tuple[Match, ...]:
    """All lexicon terms in `text`, non-overlapping, in order; the longest phrase wins at each position."""
    found: list[Match] = []
    for pattern, term in _PATTERNS + _CASE_SENSITIVE:
        for m in pattern.finditer(text):
            found.append(Match(m.start(), m.end(), term, m.group(0)))
    found.sort(key=lambda m: (m.start, -(m.end - m.start)))
    chosen: list[Match] = []
    for m in found:
        if chosen and m.start < chosen[-1].end:
            continue
        chosen.append(m)
    return tuple(chosen)
