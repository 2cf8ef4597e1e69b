"""Real report text for checking the rules grounder (tests/test_grounding_corpus.py, benchmarks/bench_grounding.py).

Sources, both inside the torchxrayvision-1.5.7 wheel (PyPI; read as a zip, never installed):
  * torchxrayvision/data/NLMCXR_reports.tgz — 3,955 OpenI chest X-ray reports (Indiana University, CC BY-NC-ND
    4.0): the FINDINGS and IMPRESSION sentences, verbatim ("XXXX" is the source's anonymisation).
  * torchxrayvision/data/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz — PadChest (BIMCV) labels with
    per-sentence localizations: each distinct (labels, localizations) combination of one report sentence is
    written as an English sentence, "Increased <labels> in the <localizations>." (the reports themselves are
    Spanish word stems, so the labels are what we can read).
tests/data/grounding_corpus_sample.json holds a small fixed sample (scripts/build_grounding_corpus_sample.py), so
the tests run where the wheel is not available.

What is checked: a sentence that names one side (and no "bilateral"/"both") must never get a point inside the
OTHER lung's field from a side word. Points at midline structures (heart, mediastinum, device tips) and points of
findings that are bilateral by nature or written as scattered/diffuse (labelled "bilateral, …") are not from a
side word and are reported separately.
"""
from __future__ import annotations

import io
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..core.points import LesionPoint
from .lung_fields import LungFields

WHEEL = Path("/work/data/txrv/torchxrayvision-1.5.7-py3-none-any.whl")
NLMCXR_IN_WHEEL = "torchxrayvision/data/NLMCXR_reports.tgz"
PADCHEST_IN_WHEEL = "torchxrayvision/data/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "grounding_corpus_sample.json"

_RIGHT = re.compile(r"\b(right|rt|right-sided)\b|\bR[UML]L\b|\bmiddle lobe\b|\bminor fissure\b", re.IGNORECASE)
_LEFT = re.compile(r"\b(left|lt|left-sided|lingula\w*|retrocardiac)\b|\bL[UL]L\b", re.IGNORECASE)
_BOTH = re.compile(r"\b(bilateral\w*|both|bibasilar|bibasal\w*|biapical)\b", re.IGNORECASE)
_NEGATED = re.compile(r"^(no|there is no|there are no|without|negative for|no evidence of|"
                      r"there is no evidence of)\b[^,;:]*$", re.IGNORECASE)
_NOT_ONLY_NEGATED = re.compile(r"\b(but|however|except|although|though|while|with|change[sd]?|increase\w*|new|"
                               r"interval|previous|prior|since|resolved|persist\w*|stable|unchanged|other than|"
                               r"otherwise|besides|than|removal|removed|placement|placed)\b", re.IGNORECASE)
MIDLINE_SITES = ("(cardiac)", "(mediastinal)", "(trachea)", "(carina)", "(svc)", "(right atrium)", "(stomach)")


def named_side(sentence: str) -> str | None:
    """'right' or 'left' when the sentence names exactly that one side (lobe names count), else None."""
    if _BOTH.search(sentence):
        return None
    right, left = bool(_RIGHT.search(sentence)), bool(_LEFT.search(sentence))
    if right == left:
        return None
    return "right" if right else "left"


def only_negated(sentence: str) -> bool:
    """A sentence that only denies findings ("No pneumothorax or pleural effusion.")."""
    return bool(_NEGATED.match(sentence.strip())) and not _NOT_ONLY_NEGATED.search(sentence)


@dataclass(frozen=True)
class SideCheck:
    """Where one sentence's points went, relative to the side it names."""

    named: int  # points inside the named lung's field
    other_from_side: int  # points inside the other lung's field that a side word placed (must be 0)
    other_not_from_side: int  # other-side points of bilateral-by-nature / scattered findings
    midline: int  # heart, mediastinum, device tips

    @property
    def strict(self) -> bool:
        """At least one point, and none at all in the other lung's field."""
        return self.named > 0 and self.other_from_side == 0 and self.other_not_from_side == 0


def side_check(points: Iterable[LesionPoint], fields: LungFields, side: str) -> SideCheck:
    """Classify points (in the pixels `fields` was estimated on, standard display) against the named side."""
    named_box, _ = fields.lung_for_side(side)
    other_box, _ = fields.lung_for_side("left" if side == "right" else "right")
    named = other_side = other_bilateral = midline = 0
    for p in points:
        if p.label.endswith(MIDLINE_SITES):
            midline += 1
        elif _inside(p, other_box) and not _inside(p, named_box):
            if "(bilateral, " in p.label:
                other_bilateral += 1
            else:
                other_side += 1
        elif _inside(p, named_box):
            named += 1
    return SideCheck(named, other_side, other_bilateral, midline)


def _inside(p: LesionPoint, box) -> bool:
    return box.x0 <= p.x < box.x1 and box.y0 <= p.y < box.y1


# ---------------------------------------------------------------- reading the wheel


def nlmcxr_sentences(wheel: Path = WHEEL) -> list[str]:
    """The distinct FINDINGS / IMPRESSION sentences of the OpenI reports, sorted."""
    import xml.etree.ElementTree as ElementTree

    with zipfile.ZipFile(wheel) as outer:
        data = outer.read(NLMCXR_IN_WHEEL)
    sentences = set()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.name.endswith(".xml"):
                continue
            root = ElementTree.parse(archive.extractfile(member)).getroot()
            for node in root.iter("AbstractText"):
                if node.get("Label") in ("FINDINGS", "IMPRESSION") and node.text:
                    sentences.update(s.strip() for s in re.split(r"(?<=[.;!?])\s+|\n", node.text) if s.strip())
    return sorted(sentences)


def padchest_sentences(wheel: Path = WHEEL) -> list[str]:
    """One English sentence per distinct (labels, localizations) of a PadChest report sentence, sorted."""
    import ast

    import pandas as pd

    with zipfile.ZipFile(wheel) as outer:
        data = outer.read(PADCHEST_IN_WHEEL)
    table = pd.read_csv(io.BytesIO(data), compression="gzip", usecols=["ReportID", "LabelsLocalizationsBySentence"])
    skip = {"normal", "exclude", "suboptimal study", "unchanged", "chronic changes"}
    sentences = set()
    for value in table.drop_duplicates("ReportID")["LabelsLocalizationsBySentence"]:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            continue
        for sentence in parsed:
            labels = [x for x in sentence if not x.startswith("loc ") and x not in skip]
            places = [x[4:] for x in sentence if x.startswith("loc ")]
            if labels:
                sentences.add(padchest_sentence(labels, places))
    return sorted(sentences)


def padchest_sentence(labels: list[str], places: list[str]) -> str:
    """"Increased laminar atelectasis in the left basal." (side first, then the other localizations)."""
    sides = [p for p in places if p in ("left", "right")]
    rest = [p for p in places if p not in ("left", "right")]
    where = " ".join(sides + rest)
    return f"Increased {' and '.join(labels)}" + (f" in the {where}." if where else ".")
