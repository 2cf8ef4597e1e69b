"""Real report text through the rules grounder, placed on the lung fields fitted to a real film (RG1_UNCI.dcm).

Corpus: tests/data/grounding_corpus_sample.json, a fixed sample of OpenI (NLMCXR) report sentences and PadChest
label/localization sentences from the torchxrayvision-1.5.7 wheel (source and licences in that file and in
legend_demo/grounding/corpus_check.py). Where the wheel itself is present, the slow test runs the whole corpus.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from legend_demo.grounding import ground
from legend_demo.grounding.corpus_check import (SAMPLE, WHEEL, named_side, nlmcxr_sentences, only_negated,
                                                padchest_sentences, side_check)
from legend_demo.grounding.landmark_check import rg1_array
from legend_demo.grounding.limits import MAX_TEXT_CHARS
from legend_demo.grounding.lung_fields import estimate_lung_fields
from legend_demo.grounding.rules import rule_points

pytestmark = pytest.mark.slow  # grounds thousands of report sentences: the slow tier (python -m pytest -m slow)

pytest.importorskip("pydicom.data")
CORPUS = json.loads(SAMPLE.read_text(encoding="utf-8"))
ONE_SIDED = CORPUS["nlmcxr_one_side"] + CORPUS["padchest_one_side"]
EVERY = ONE_SIDED + CORPUS["nlmcxr_negated"] + CORPUS["nlmcxr_other"]
PER_SENTENCE_S = 0.25  # generous bound for one sentence on a loaded CI machine (measured ≤ 0.01 s typical)


@pytest.fixture(scope="module")
def fields():
    found = estimate_lung_fields(rg1_array())
    assert found.source == "image", found.reason
    return found


def test_the_sample_states_its_source_and_covers_each_kind():
    assert "NLMCXR_reports.tgz" in CORPUS["source"] and "PADCHEST" in CORPUS["source"]
    assert len(CORPUS["nlmcxr_one_side"]) >= 100 and len(CORPUS["padchest_one_side"]) >= 100
    assert len(CORPUS["nlmcxr_negated"]) >= 50
    assert all(named_side(s) for s in ONE_SIDED)
    assert all(only_negated(s) for s in CORPUS["nlmcxr_negated"])


def test_every_sentence_grounds_without_error_in_bounded_time(fields):
    width, height = fields.image_size
    slowest = 0.0
    for sentence in EVERY:
        assert len(sentence) <= MAX_TEXT_CHARS
        started = time.perf_counter()
        points, warnings = rule_points(sentence, fields)
        slowest = max(slowest, time.perf_counter() - started)
        assert all(isinstance(w, str) for w in warnings)
        for p in points:
            assert 0 <= p.x < width and 0 <= p.y < height, (sentence, p)
            assert 3 <= p.confidence <= 5
    assert slowest < PER_SENTENCE_S


def test_a_side_word_never_puts_a_point_in_the_other_lung(fields):
    checks = {s: side_check(rule_points(s, fields)[0], fields, named_side(s)) for s in ONE_SIDED}
    wrong = {s: c for s, c in checks.items() if c.other_from_side}
    assert not wrong
    located = sum(c.named > 0 for c in checks.values()) / len(checks)
    assert located >= 0.75, f"only {located:.0%} of one-sided sentences got a point on their side"


@pytest.mark.parametrize("sentence", CORPUS["nlmcxr_negated"])
def test_sentences_that_only_deny_findings_give_no_points(fields, sentence):
    points, _ = rule_points(sentence, fields)
    assert points == [], (sentence, points)


def test_report_sentences_through_ground_on_the_film_and_its_mirror():
    """End to end (ground(), orientation included): the mirrored copy tagged R\\F gives the mirrored points."""
    from dataclasses import dataclass

    array = rg1_array()

    @dataclass
    class Film:
        array: np.ndarray
        original_size: tuple
        dicom_info: dict

    width = array.shape[1]
    standard = Film(array, (width, array.shape[0]), {"PatientOrientation": "L\\F", "ViewPosition": "PA"})
    mirrored = Film(np.ascontiguousarray(array[:, ::-1]), standard.original_size,
                    {"PatientOrientation": "R\\F", "ViewPosition": "PA"})
    for sentence in CORPUS["nlmcxr_one_side"][:12]:
        a, b = ground(standard, sentence), ground(mirrored, sentence)
        assert [(width - 1 - p.x, p.y, p.label) for p in a.points] == [(p.x, p.y, p.label) for p in b.points]


@pytest.mark.slow
@pytest.mark.skipif(not WHEEL.is_file(), reason="the torchxrayvision wheel is not on this machine")
def test_the_whole_corpus(fields):
    for name, sentences in (("NLMCXR", nlmcxr_sentences()), ("PadChest", padchest_sentences())):
        one_sided = [s for s in sentences if named_side(s)]
        checks = [side_check(rule_points(s, fields)[0], fields, named_side(s)) for s in one_sided]
        assert sum(c.other_from_side for c in checks) == 0, name
        for s in (s for s in sentences if only_negated(s)):
            assert rule_points(s, fields)[0] == [], s
