"""Warnings in a clinician's words, gathered once for a film, its points and a result.

Every warning the app knows of — the grounder fell back to standard lung-zone positions, the film's orientation is
assumed (the "R?" markers), the DICOM header names an odd view or body part, the model read only part of the
description, the points were edited after Find — is said here in one short sentence a radiologist can act on,
without thresholds or internal numbers ("mean contrast 0.23, need 0.12" stays in the report's
`warning_details`). The same sentences appear beside the points, in the result's status line, in the report
JSON (`warnings`) and in the API's answers, so a warning never disappears with a toast.

`clinical(message)` rewords one technical message (unknown ones are kept, minus a trailing technical parenthesis);
`film_warnings`, `editor_warnings` and `result_warnings` gather the lists.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from ..grounding.orientation import NOT_A_CHEST, check_frontal_chest, read_orientation

ORIENTATION_ASSUMED = ("The film does not record its orientation: the patient's right is assumed to be on the image "
                       "left (markers “R?” / “L?”). Check the sides before relying on left and right.")
POINTS_EDITED = "The points were changed by hand after Find lesions; the follow-up uses the points as edited."
POINTS_BY_HAND = "The points were placed by hand, not found from the description."
NO_POINTS_FOUND = ("Nothing in the description could be placed on the film (no finding with a site was "
                   "recognised). Click the film to place a point, or reword the description.")

_RULES: list[tuple[re.Pattern[str], Any]] = []


def _rule(pattern: str):
    def register(fn):
        _RULES.append((re.compile(pattern, re.S), fn))
        return fn

    return register


@_rule(re.escape(NOT_A_CHEST) + r" \(no lung fields found.*coarse centres")
def _coarse(_m) -> str:
    return ("The lungs could not be outlined on this film (it may not be a frontal chest radiograph, or its contrast "
            "is unusual), so the points sit at standard lung-zone positions, not on this patient's anatomy. Check "
            "each point and drag it where the change is.")


@_rule(r"^VLM grounder failed \((?P<why>.*)\); used the rules grounder")
def _vlm_failed(m) -> str:
    return ("The AI grounder (Qwen2.5-VL) gave no usable answer, so the rule-based grounder placed the points. "
            "Check them.")


@_rule(r"^VLM answer repaired")
def _vlm_repaired(_m) -> str:
    return "The AI grounder's answer needed small repairs before it could be read; check the points."


@_rule(r"^no change word in '(?P<clause>.*)': its points get confidence (?P<c>\d)")
def _no_change(m) -> str:
    return (f"“{_short(m['clause'])}” does not say how it changed (new, worse, better, resolved …): its point has "
            f"low confidence ({m['c']}).")


@_rule(r"^'(?P<what>.*)' without a side: no point placed")
def _no_side(m) -> str:
    return f"“{m['what']}” has no side (left or right), so no point was placed for it: click the film to place it."


@_rule(r"^no localisable change in the description")
def _nothing(_m) -> str:
    return NO_POINTS_FOUND


@_rule(r"^BodyPartExamined is '(?P<part>[^']*)', not the chest")
def _body_part(m) -> str:
    return (f"The file says the body part is {m['part'].lower()}, not the chest: points and follow-up may be "
            "meaningless on this film.")


@_rule(r"^ViewPosition (?P<view>\S+) is an oblique view")
def _oblique(m) -> str:
    return f"The file says this is an oblique view ({m['view']}): left and right may be misplaced."


@_rule(r"^ViewPosition (?P<view>.+) is a decubitus film")
def _decubitus(m) -> str:
    return f"The file says this is a decubitus film ({m['view']}): check that it is shown head up."


@_rule(r"^ImageLaterality (?P<side>[LR]) says only")
def _one_side(m) -> str:
    side = "left" if m["side"] == "L" else "right"
    return f"The file says only the patient's {side} side is imaged; a frontal chest film shows both sides."


@_rule(r"^PatientOrientation (?P<tag>.*?) is not (two directions|a frontal chest orientation)")
def _bad_orientation(m) -> str:
    return (f"The file's orientation tag ({m['tag']}) could not be used: the patient's right is assumed to be on "
            "the image left (markers “R?” / “L?”).")


@_rule(r"^the model reads only the first (?P<n>\d+) words? of the description; it did not read: (?P<rest>.*)$")
def _unread(m) -> str:
    return (f"The model reads only the start of the description (about {m['n']} words): it did not read "
            f"“{_short(m['rest'], 80)}”. Put the change you want first, or shorten the text.")


def clinical(message: str) -> str:
    """One technical warning in a clinician's words; an unknown one is kept (without a technical parenthesis)."""
    text = " ".join(str(message).split())
    for pattern, word in _RULES:
        match = pattern.search(text)
        if match:
            return word(match)
    text = re.sub(r"\s*\((?=[^()]*\d)[^()]*\)", "", text)  # "(mean contrast 0.23, need 0.12)" → gone
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def clinical_all(messages: Iterable[str]) -> list[str]:
    """Reworded and without repeats, in order."""
    return list(dict.fromkeys(clinical(m) for m in messages if str(m).strip()))


def film_warnings(image: Any) -> list[str]:
    """What the film itself warns about (technical messages): view, body part, side tags, orientation assumed.
    A lateral view raises LateralViewError (check_frontal_chest)."""
    info = getattr(image, "dicom_info", None) or {}
    messages = check_frontal_chest(info)
    if not _orientation_tagged(info) and not any(m.startswith("PatientOrientation") for m in messages):
        messages.append(ORIENTATION_ASSUMED)
    return messages


def _orientation_tagged(info: Mapping[str, Any]) -> bool:
    orientation, problems = read_orientation(info)
    return bool(info.get("PatientOrientation")) and not problems and orientation.frontal


def editor_warnings(value: Any) -> list[str]:
    """What the points say: the grounder's warnings kept with them, and whether they were edited after Find."""
    if not isinstance(value, dict) or not value.get("width"):
        return []
    messages = list(value.get("warnings") or [])
    points, found = value.get("points") or [], value.get("found") or []
    if value.get("for_text") is not None and _moved(points, found):
        messages.append(POINTS_EDITED)
    elif value.get("for_text") is None and points and not value.get("origin"):
        messages.append(POINTS_BY_HAND)
    return messages


def _moved(points: list, found: list) -> bool:
    key = lambda p: (round(float(p.get("x", 0)), 1), round(float(p.get("y", 0)), 1), p.get("confidence"), p.get("label"))  # noqa: E731
    return [key(p) for p in points] != [key(p) for p in found]


def page_warnings(image: Any, value: Any) -> list[str]:
    """Everything to show beside the points, in clinician words (film first, then the points)."""
    if image is None:
        return []
    try:
        film = film_warnings(image)
    except ValueError as exc:  # a lateral view: said as the refusal it is
        film = [str(exc)]
    return clinical_all([*film, *editor_warnings(value)])


def warnings_markdown(warnings: list[str]) -> str:
    """The warnings as Markdown lines, each starting with ⚠ ('' without warnings)."""
    return "\n".join(f"⚠ {_md(w)}  " for w in warnings)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


@_rule(r"^the engine did not draw the (?P<what>.*?) as described: its point lies outside where this finding can be")
def _outside_compartment(m) -> str:
    return (f"Nothing was drawn for the {m['what']}: its point lies outside where that finding can be (for example "
            f"below the diaphragm or outside the lung). Move the point.")


@_rule(r"^the engine did not draw the (?P<what>.*?) as described: the engine drew (?P<how>almost nothing|the opposite)")
def _not_drawn(m) -> str:
    drew = "almost nothing" if m["how"] == "almost nothing" else "the opposite change"
    return (f"The model did not draw the {m['what']} as described (it drew {drew} there), so the follow-up may not "
            f"show it. Try another seed or a higher bias strength, move the point, or use another engine.")


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gather(*groups: Iterable[str]) -> tuple[list[str], list[str]]:
    """(clinician sentences, the technical messages behind them), each without repeats, in order."""
    details = list(dict.fromkeys(" ".join(str(m).split()) for group in groups for m in group if str(m).strip()))
    return clinical_all(details), details


def engine_warnings(bundle: Any) -> list[str]:
    """What the engine said while generating (view checks, the part of the text its encoder did not read)."""
    runs = [*bundle.samples, *([bundle.off] if bundle.off is not None else [])]
    return [m for run in runs for m in run.provenance.warnings]
