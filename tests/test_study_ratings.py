"""Ratings: validation, one transaction per submission, idempotent resubmission, immutability, blinding."""
from __future__ import annotations

import dataclasses

import pytest

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.ratings import Rating, RatingLockedError, submit_and_next, submit_rating
from legend_demo.study.readers import add_reader
from legend_demo.study.reading import next_case, progress
from legend_demo.study.studies import create_study

pytestmark = pytest.mark.slow  # reader-study database: the slow tier (python -m pytest -m slow)

GOOD = dict(realism=4, faithfulness=3, anatomy=5, called_synthetic=True, confidence=2, lesion_location="partly")


def _study(tmp_path, allow_changes=False):
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / "demo")), seed=3, allow_changes=allow_changes)
    conn = connect(db)
    return db, conn, add_reader(conn, "alice", "alice-password")


@pytest.mark.parametrize("field,value", [
    ("realism", 0), ("realism", 6), ("faithfulness", 7), ("anatomy", -1), ("confidence", 9),
    ("realism", 3.5), ("anatomy", True), ("faithfulness", "3"), ("lesion_location", "maybe"),
    ("called_synthetic", "yes"), ("time_on_case_s", -2.0), ("time_on_case_s", float("nan")),
])
def test_out_of_range_values_raise_value_error_naming_the_value(field, value):
    with pytest.raises(ValueError) as caught:
        Rating(**{**GOOD, field: value})
    assert field in str(caught.value) and repr(value) in str(caught.value)


def test_submission_is_committed_before_the_next_case_is_returned(tmp_path):
    db, conn, reader = _study(tmp_path)
    first = next_case(conn, reader)
    assert (first.position, first.total) == (1, 8) and first.progress_label == "Case 1 of 8"
    following = submit_and_next(conn, reader, first.position, [Rating(**GOOD, time_on_case_s=12.5)])
    observer = connect(db)  # a separate connection sees the rating already
    stored = observer.execute("SELECT realism, time_on_case_s, position FROM ratings").fetchall()
    assert [tuple(r) for r in stored] == [(4, 12.5, 1)]
    assert following.position == 2 and progress(observer, reader) == (1, 8)


def test_resubmission_is_idempotent_and_changes_are_refused(tmp_path):
    _, conn, reader = _study(tmp_path)
    assert submit_rating(conn, reader, 1, Rating(**GOOD, time_on_case_s=3)) == "stored"
    assert submit_rating(conn, reader, 1, Rating(**GOOD, time_on_case_s=9)) == "unchanged"  # e.g. a double click
    with pytest.raises(RatingLockedError, match="does not allow changes"):
        submit_rating(conn, reader, 1, Rating(**{**GOOD, "realism": 1}))
    rows = conn.execute("SELECT realism, time_on_case_s FROM ratings").fetchall()
    assert [tuple(r) for r in rows] == [(4, 3.0)]


def test_changes_are_recorded_when_the_study_allows_them(tmp_path):
    _, conn, reader = _study(tmp_path, allow_changes=True)
    submit_rating(conn, reader, 1, Rating(**GOOD))
    assert submit_rating(conn, reader, 1, Rating(**{**GOOD, "realism": 1, "comment": "on reflection"})) == "updated"
    row = conn.execute("SELECT realism, comment, updated_at FROM ratings").fetchone()
    assert (row["realism"], row["comment"]) == (1, "on reflection") and row["updated_at"]
    assert conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1


def test_cases_cannot_be_skipped_or_invented(tmp_path):
    _, conn, reader = _study(tmp_path)
    with pytest.raises(ValueError, match="case 1 comes first"):
        submit_rating(conn, reader, 3, Rating(**GOOD))
    with pytest.raises(ValueError, match="position 99"):
        submit_rating(conn, reader, 99, Rating(**GOOD))
    with pytest.raises(ValueError, match="2 rating"):
        from legend_demo.study.ratings import submit_ratings
        submit_ratings(conn, reader, 1, [Rating(**GOOD), Rating(**GOOD)])
    assert conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0


def test_the_readers_view_carries_no_source(tmp_path):
    _, conn, reader = _study(tmp_path)
    sources = {r[0] for r in conn.execute("SELECT source FROM candidates")}
    view = next_case(conn, reader)
    fields = {f.name for f in dataclasses.fields(view)}
    assert fields == {"position", "total", "prior", "text", "candidates", "number", "skipped"}
    shown = repr(dataclasses.replace(view, prior=None, candidates=()))
    assert not any(source in shown for source in sources)


def test_finished_reader_gets_no_next_case(tmp_path):
    _, conn, reader = _study(tmp_path)
    view = next_case(conn, reader)
    while view is not None:
        view = submit_and_next(conn, reader, view.position, [Rating(**GOOD)])
    assert progress(conn, reader) == (8, 8) and next_case(conn, reader) is None
