"""Radiology-style sentences for a known change, always in the PATIENT's laterality (right = patient right)."""
from __future__ import annotations

import numpy as np

from .changes import ChangeSpec

SIZE_WORDS = {1: "small ", 2: "moderate ", 3: "large "}
TEMPLATES = {
    "new": ("New {size}{f}.", "Interval development of {size}{f}.", "There is a new {size}{f}.",
            "Newly seen {size}{f}."),
    "increased": ("Interval increase in the {f}.", "Worsening {f}.", "The {f} has increased.",
                  "Increased {f} compared with the prior study."),
    "decreased": ("Interval decrease in the {f}.", "Improving {f}.", "The {f} has decreased.",
                  "Decreased {f} compared with the prior study."),
    "resolved": ("Previously seen {f} has resolved.", "Resolution of the {f}.", "Interval resolution of the {f}.",
                 "The {f} is no longer seen."),
    "unchanged": ("Stable {f}.", "Unchanged {f}.", "No interval change in the {f}.", "The {f} is unchanged."),
}
HEART_TEMPLATES = {
    "new": ("New cardiomegaly.", "The heart is now enlarged.", "Interval development of cardiomegaly."),
    "increased": ("Heart size has increased.", "Interval enlargement of the cardiac silhouette.",
                  "Worsening cardiomegaly."),
    "decreased": ("Heart size has decreased.", "The cardiac silhouette is smaller than before.",
                  "Improving cardiomegaly."),
    "resolved": ("Previously seen cardiomegaly has resolved.", "Heart size has returned to normal."),
    "unchanged": ("Stable cardiomegaly.", "Heart size is unchanged."),
}
SOURCE_PREFIXES = ("Frontal chest radiograph", "Frontal (PA) chest radiograph", "PA view of the chest")


def _pick(options, rng: np.random.Generator) -> str:
    return str(options[rng.integers(len(options))])


def finding_phrase(change: ChangeSpec, rng: np.random.Generator) -> str:
    """'right lower lobe consolidation', 'left pleural effusion', … (no article, no size word)."""
    side, lobe = change.side, change.lobe
    if change.kind == "consolidation":
        return f"{side} {lobe} lobe {_pick(('consolidation', 'airspace opacity', 'airspace consolidation'), rng)}"
    if change.kind == "nodule":
        noun = "mass" if max(change.level_ref, change.level_flu) == 3 else "nodule"
        return f"{side} {lobe} lobe {noun}"
    if change.kind == "effusion":
        return _pick((f"{side} pleural effusion", f"{side}-sided pleural effusion", f"{side} effusion"), rng)
    if change.kind == "pneumothorax":
        return _pick((f"{side} apical pneumothorax", f"{side} pneumothorax", f"{side}-sided pneumothorax"), rng)
    raise ValueError(f"no finding phrase for change type {change.kind!r}")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def progression_description(change: ChangeSpec, rng: np.random.Generator) -> str:
    """One sentence describing the change from reference to follow-up."""
    if change.direction not in TEMPLATES:
        raise ValueError(f"unknown direction {change.direction!r}; known: {tuple(TEMPLATES)}")
    if change.kind == "cardiomegaly":
        return _pick(HEART_TEMPLATES[change.direction], rng)
    size = SIZE_WORDS.get(change.level_flu, "") if change.kind != "consolidation" and rng.random() < 0.6 else ""
    template = _pick(TEMPLATES[change.direction], rng)
    return _capitalised(template.format(f=finding_phrase(change, rng), size=size))


def source_description(change: ChangeSpec, rng: np.random.Generator) -> str:
    """Describes the reference image (the lesion as it is there, if present)."""
    prefix = _pick(SOURCE_PREFIXES, rng)
    if change.level_ref == 0:
        return f"{prefix}; no focal abnormality."
    if change.kind == "cardiomegaly":
        return f"{prefix} showing cardiomegaly."
    return f"{prefix} showing {SIZE_WORDS[change.level_ref]}{finding_phrase(change, rng)}."
