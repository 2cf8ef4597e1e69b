"""Read a progression description into mentions: finding, change, locations, negation (thesis §4.6).

Sentences split on . ; ! ? and new lines; clauses on commas and "but / while / whereas / however". In a
clause each finding takes the location words just before it (or, if none, just after it); a negation
("no", "without") covers the findings after it until a change word; "normal" / "clear" negate the whole
clause unless it states a change. A clause without locations or without a change word borrows them from the
previous clause of the same sentence ("… increased, with associated effusion"), at lower confidence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .lexicon import Match, Term, find_terms

SELF_LOCATED_ONLY = ("lung_bilateral", "cardiac", "mediastinal")  # findings that take no place from others
WEAK_BOTH = ("diffuse", "diffusely", "multifocal", "widespread", "scattered")  # "scattered right basilar …"
_LEVEL_WORDS = {"middle": "mid zone", "upper": "upper zone", "lower": "lower zone", "retrocardiac": "medial lower zone"}
_SENTENCE = re.compile(r"(?<!\d)[.;!?\n]+(?!\d)")
_CLAUSE = re.compile(r",|\b(?:but|while|whereas|however|although)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Location:
    """A patient side ('right', 'left', 'both' or None) with a zone (or None) as written in the text."""

    side: str | None
    zone: str | None
    lobe: bool = False
    note: str = ""  # how the words were read when they name something that does not exist ("left middle lobe")


@dataclass(frozen=True)
class Mention:
    """One finding of the description and what the text says about where and how it changed."""

    kind: str  # lexicon finding kind: lung, lung_bilateral, effusion, pneumothorax, cardiac, device_*, …
    name: str  # the words used ("consolidation")
    change: str | None  # change category (new, worse, persistent, better, resolved, repositioned) or None
    change_word: str | None
    change_borrowed: bool  # the change word came from an earlier clause
    locations: tuple[Location, ...]
    locations_borrowed: bool  # the locations came from an earlier clause
    landmark: str | None
    negated: bool
    clause: str
    severity: str | None = None  # "small", "moderate", … as written; kept in the label, never moves a point


@dataclass
class _Draft:
    side: str | None = None
    zones: list[Term] = field(default_factory=list)
    side_word: str = ""  # the side word that set `side` ("left"), empty when a lobe name implied it
    notes: list[str] = field(default_factory=list)


def read_mentions(text: str) -> list[Mention]:
    """All mentions of `text`, in reading order (negated ones included, flagged)."""
    mentions: list[Mention] = []
    for sentence in _SENTENCE.split(text):
        previous_locations: tuple[Location, ...] = ()
        previous_change: Match | None = None
        landmark = next((m.term.value for m in find_terms(sentence) if m.term.kind == "landmark"), None)
        sentence_start = len(mentions)
        for clause in _CLAUSE.split(sentence):
            if not clause.strip():
                continue
            terms = find_terms(clause)
            change = next((m for m in terms if m.term.kind == "change"), None)
            found = _clause_mentions(clause.strip(), terms, change or previous_change, change is None,
                                     previous_locations, landmark)
            if change is not None and _only_a_change(terms):
                _attach_trailing_change(mentions, sentence_start, change)  # "Right effusion, increased."
            elif not found and _only_a_place(terms):
                _attach_trailing_place(mentions, sentence_start, _locations(terms))  # "Granuloma, right base."
            mentions.extend(found)
            own = _locations(terms)
            previous_locations = own or previous_locations
            previous_change = change or previous_change
        side = _sentence_side(sentence)
        if side:
            mentions[sentence_start:] = [_on_side(m, side) for m in mentions[sentence_start:]]
    return mentions


def _sentence_side(sentence: str) -> str | None:
    """The one side a sentence names ("right", "left"), or None when it names none, both, or "bilateral"."""
    sides, both = set(), False
    for m in find_terms(sentence):
        if m.term.kind == "side" and m.term.value in ("right", "left"):
            sides.add(m.term.value)
        elif m.term.kind == "zone" and m.term.side in ("right", "left"):
            sides.add(m.term.side)
        elif (m.term.kind == "side" and m.term.value == "both" and m.text.lower() not in WEAK_BOTH) or (
                m.term.kind == "zone" and m.term.side == "both"):
            both = True
    return sides.pop() if len(sides) == 1 and not both else None


def _on_side(m: Mention, side: str) -> Mention:
    """In a sentence that names one side, places written without a side are on that side."""
    if m.kind in SELF_LOCATED_ONLY and not m.locations:
        return m
    if not m.locations:
        return replace(m, locations=(Location(side, None),), locations_borrowed=True)
    if all(loc.side is not None for loc in m.locations):
        return m
    return replace(m, locations=tuple(replace(loc, side=loc.side or side) for loc in m.locations))


def _only_a_change(terms: list[Match]) -> bool:
    """The clause holds a change word and nothing else the grounder reads (no finding, place or negation)."""
    return all(m.term.kind in ("change", "severity") for m in terms)


def _only_a_place(terms: list[Match]) -> bool:
    """The clause names a place and holds nothing else but change or severity words."""
    return any(m.term.kind in ("side", "zone") for m in terms) and all(
        m.term.kind in ("side", "zone", "change", "severity") for m in terms)


def _attach_trailing_place(mentions: list[Mention], start: int, places: tuple[Location, ...]) -> None:
    """Give the sentence's earlier mentions that have no place of their own this clause's place."""
    for index in range(start, len(mentions)):
        m = mentions[index]
        if (not m.locations or m.locations_borrowed) and m.kind not in SELF_LOCATED_ONLY:
            mentions[index] = replace(m, locations=places, locations_borrowed=False)


def _attach_trailing_change(mentions: list[Mention], start: int, change: Match) -> None:
    """Give the sentence's earlier mentions that have no change word this clause's change word."""
    for index in range(start, len(mentions)):
        if mentions[index].change is None:
            mentions[index] = replace(mentions[index], change=change.term.value, change_word=change.text.lower(),
                                      change_borrowed=False)


def _clause_mentions(clause: str, terms: list[Match], change: Match | None, change_borrowed: bool,
                     previous_locations: tuple[Location, ...], sentence_landmark: str | None) -> list[Mention]:
    clause_negated = any(m.term.kind == "clause_negation" for m in terms) and not any(
        m.term.kind == "change" for m in terms)
    landmark = next((m.term.value for m in terms if m.term.kind == "landmark"), sentence_landmark)
    segments, findings = _segments(terms)
    if not findings:
        located = _locations(segments[0])
        if located and change is not None and not change_borrowed and not clause_negated:
            return [_mention(Term("finding", "lung", "opacity"), False, change, change_borrowed, located,
                             False, landmark, clause)]
        return []
    before = [_locations(segments[i]) for i in range(len(findings))]
    own = [_locations(segments[i] + segments[i + 1]) if _unsided(before[i]) else before[i]
           for i in range(len(findings))]  # "basilar atelectasis on the left", "scattered opacities in the LLL"
    after = [not before[i] and bool(own[i]) for i in range(len(findings))]  # place written after the finding
    out = []
    for index, (finding, negated, severity) in enumerate(findings):
        located = own[index] or _shared_location(own, after, index, findings)
        borrowed = not located and bool(previous_locations)
        own_change = _first_change(segments[index]) or _first_change(segments[index + 1]) or change
        out.append(_mention(finding.term, negated or clause_negated, own_change, change_borrowed,
                            located or previous_locations, borrowed, landmark, clause, finding.text, severity))
    return out


def _shared_location(own: list[tuple[Location, ...]], after: list[bool], index: int,
                     findings: list[tuple[Match, bool, str | None]]) -> tuple[Location, ...]:
    """A finding without its own place shares a place named for another finding of the clause: a later one's
    place written after it ("consolidation and atelectasis in the right base"), else the previous one's ("right
    effusion with atelectasis"). Findings that are bilateral by nature (edema) only take a place written for them."""
    if findings[index][0].term.value in SELF_LOCATED_ONLY:
        return ()
    later = next((k for k in range(index + 1, len(own)) if own[k]), None)
    if later is not None and after[later]:
        return own[later]
    earlier = next((loc for loc in reversed(own[:index]) if loc), ())
    return earlier or (own[later] if later is not None else ())


def _unsided(locations: tuple[Location, ...]) -> bool:
    """No side written before the finding, or only a bare "scattered"/"diffuse" (the place may follow it)."""
    return all(loc.side is None or (loc.side == "both" and loc.zone is None) for loc in locations)


def _first_change(segment: list[Match]) -> Match | None:
    return next((m for m in segment if m.term.kind == "change"), None)


def _segments(terms: list[Match]) -> tuple[list[list[Match]], list[tuple[Match, bool, str | None]]]:
    """Location and change words between findings (segment i precedes finding i); each finding with its negation
    and the severity word written just before it."""
    segments: list[list[Match]] = [[]]
    findings: list[tuple[Match, bool, str | None]] = []
    negation = False
    severity: str | None = None
    for m in terms:
        kind = m.term.kind
        if kind == "negation":
            negation = True
        elif kind == "change":
            negation = False
            segments[-1].append(m)
        elif kind in ("side", "zone"):
            segments[-1].append(m)
        elif kind == "severity":
            severity = m.text.lower()
        elif kind == "finding":
            findings.append((m, negation, severity))
            segments.append([])
            severity = None
    return segments, findings


def _locations(terms: list[Match]) -> tuple[Location, ...]:
    """Side and zone words in order → locations ("right upper and lower lobes" → right upper, right lower)."""
    drafts: list[_Draft] = []
    for m in terms:
        if m.term.kind not in ("side", "zone"):
            continue
        term, current = m.term, (drafts[-1] if drafts else None)
        if term.kind == "side":
            if current is not None and current.side is None and current.zones and not current.zones[0].side:
                current.side = term.value  # "lower lobe on the right"
                current.side_word = m.text
            else:
                drafts.append(_Draft(side=term.value, side_word=m.text))
        elif (term.side and current is not None and current.side_word and not current.zones
              and current.side in ("right", "left") and term.side != current.side):
            # a side word names this lobe/zone on the other side ("left middle lobe"): the side word wins,
            # the zone keeps its level — a side word never yields a point on the other side
            current.zones.append(Term("zone", term.value, term.name, None, False))
            current.notes.append(f"'{m.text}' with '{current.side_word}': there is no {current.side} "
                                 f"{m.text.lower()}; read as the {current.side} {_LEVEL_WORDS.get(term.value, term.value)}")
        elif term.side and current is not None and current.side not in (None, term.side):
            drafts.append(_Draft(side=term.side, zones=[term]))  # "RUL and lingula"
        elif current is None or (term.side and current.zones and current.zones[-1].side != term.side):
            drafts.append(_Draft(side=term.side, zones=[term]))
        else:
            current.side = current.side or term.side
            current.zones.append(term)
    return _one_sided(tuple(loc for d in drafts for loc in _draft_locations(d)))


def _one_sided(locations: tuple[Location, ...]) -> tuple[Location, ...]:
    """Places read together: with a lateral side present, a bare "scattered"/"both" without a zone adds nothing,
    and when only one lateral side is named, side-less zones are on it ("basilar atelectasis in the lingula")."""
    lateral = {loc.side for loc in locations if loc.side in ("right", "left")}
    if not lateral:
        return locations
    kept = tuple(loc for loc in locations if not (loc.side == "both" and loc.zone is None))
    if len(lateral) == 1:
        side = next(iter(lateral))
        kept = tuple(replace(loc, side=side) if loc.side is None else loc for loc in kept)
    return kept


def _draft_locations(draft: _Draft) -> list[Location]:
    note = "; ".join(draft.notes)
    if not draft.zones:
        return [Location(draft.side, None, note=note)]
    return [Location(draft.side or z.side, z.value, z.lobe, note) for z in draft.zones]


def _mention(finding: Term, negated: bool, change: Match | None, change_borrowed: bool,
             locations: tuple[Location, ...], locations_borrowed: bool, landmark: str | None, clause: str,
             name: str | None = None, severity: str | None = None) -> Mention:
    return Mention(
        kind=finding.value,
        name=(name or finding.name).lower(),
        change=change.term.value if change else None,
        change_word=change.text.lower() if change else None,
        change_borrowed=change_borrowed and change is not None,
        locations=locations,
        locations_borrowed=locations_borrowed,
        landmark=landmark,
        negated=negated,
        clause=clause,
        severity=severity,
    )
