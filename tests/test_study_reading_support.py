"""What a reader and a coordinator rely on besides the ratings: drafts kept on the server, time per case that
cannot exceed the time that passed, intervals inside the 1–5 scale, two follow-ups of one prior kept apart, and the
admin's per-reader progress and answer summaries."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from legend_demo.study.analysis import MIN_N_FOR_INTERVAL, mean_bootstrap_interval, mean_t_interval
from legend_demo.study.assignment import single_slots
from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.drafts import Draft, discard_draft, load_draft, parse_draft, save_draft
from legend_demo.study.manifest import read_manifest
from legend_demo.study.ratings import Rating, submit_rating
from legend_demo.study.readers import add_reader
from legend_demo.study.reading import next_position
from legend_demo.study.studies import create_study
from legend_demo.study.summary import reader_progress, summarise
from legend_demo.study.timing import SLACK_S, active_seconds, report_active, start_case


@pytest.fixture()
def study(tmp_path):
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / "demo")), seed=3)
    conn = connect(db)
    readers = [add_reader(conn, name, "reader-password") for name in ("ann", "ben")]
    yield conn, readers
    conn.close()


# -- intervals -----------------------------------------------------------------------------------------------
def test_bootstrap_intervals_stay_inside_the_scale_where_t_intervals_do_not():
    t = mean_t_interval([2, 5])  # the "3.50 [−2.85, 9.85]"
    assert t.low < 1 and t.high > 5
    small = mean_bootstrap_interval([2, 5])
    assert small.value == 3.5 and math.isnan(small.low) and small.n == 2
    assert small.as_text() == "3.50 (n=2, too few for an interval)"
    rng = np.random.default_rng(0)
    for n in (MIN_N_FOR_INTERVAL, 8, 30, 200):
        for _ in range(20):
            values = rng.integers(1, 6, size=n)
            estimate = mean_bootstrap_interval(values)
            assert 1 <= values.min() <= estimate.low <= estimate.value <= estimate.high <= values.max() <= 5
            assert estimate.method == "bootstrap" and estimate.n == n
    extreme = mean_bootstrap_interval([1, 1, 1, 1, 5])
    assert extreme.low >= 1 and extreme.high <= 5 and mean_t_interval([1, 1, 1, 1, 5]).low < 1
    assert mean_bootstrap_interval([3] * 9).note == "all ratings equal"
    assert mean_bootstrap_interval([4, 2, 5, 3, 3, 1]) == mean_bootstrap_interval([4, 2, 5, 3, 3, 1])  # seeded
    assert mean_bootstrap_interval([4, 2, 5, 3, 3, 1]).as_text(with_n=True).endswith("(n=6)")
    with pytest.raises(ValueError, match="1–5 scale"):
        mean_bootstrap_interval([1, 6, 3, 3, 3])


def test_a_large_sample_bootstrap_interval_matches_the_t_interval():
    values = np.random.default_rng(1).integers(2, 5, size=400)
    boot, t = mean_bootstrap_interval(values), mean_t_interval(values)
    assert boot.low == pytest.approx(t.low, abs=0.02) and boot.high == pytest.approx(t.high, abs=0.02)


# -- drafts --------------------------------------------------------------------------------------------------
def test_a_draft_is_kept_for_the_open_case_only_and_survives_reconnecting(study, tmp_path):
    conn, (ann, ben) = study
    open_case = next_position(conn, ann)
    draft = parse_draft({"a": ["4", None, "2", "synthetic", None, "partly"], "comment": "left base?"})
    assert save_draft(conn, ann, open_case, draft)
    assert not save_draft(conn, ann, open_case + 1, draft)  # not open yet
    assert load_draft(connect(tmp_path / "s.db"), ann, open_case) == draft  # another connection: it is on disk
    assert load_draft(conn, ben, open_case) is None  # a reader's draft is theirs alone
    assert save_draft(conn, ann, open_case, Draft())  # clearing every answer forgets the draft
    assert load_draft(conn, ann, open_case) is None
    save_draft(conn, ann, open_case, draft)
    discard_draft(conn, ann, open_case)
    assert load_draft(conn, ann, open_case) is None


@pytest.mark.parametrize("bad", [
    None, [], {"a": ["4"] * 5}, {"a": ["6", None, None, None, None, None]}, {"a": [None, None, None, "maybe", None, None]},
    {"a": [4, None, None, None, None, None]}, {"comment": "x" * 2001}, {"comment": 5},
])
def test_a_malformed_draft_is_refused(bad):
    with pytest.raises(ValueError):
        parse_draft(bad)


# -- time per case -------------------------------------------------------------------------------------------
def test_reported_time_adds_up_across_pages_but_never_beyond_the_time_that_passed(study):
    conn, (ann, _) = study
    position = next_position(conn, ann)
    start_case(conn, ann, position, now=1000.0)
    assert report_active(conn, ann, position, 10.0, now=1012.0, report_id="p1-1") == 10.0  # first page
    assert report_active(conn, ann, position, 10.0, now=1012.5, report_id="p1-1") == 0.0  # resent after a reload
    assert report_active(conn, ann, position, 8.0, now=1030.0, report_id="p2-1") == 8.0  # the page after the reload
    assert active_seconds(conn, ann, position) == 18.0
    claimed = report_active(conn, ann, position, 500.0, now=1040.0, report_id="p2-2")  # more than 10 s passed
    assert claimed == pytest.approx(10.0 + SLACK_S)
    two_tabs = report_active(conn, ann, position, 30.0, now=1041.0, report_id="p3-1")  # another tab, same second
    assert two_tabs <= 1.0 + SLACK_S
    assert active_seconds(conn, ann, position) <= 1041.0 - 1000.0 + SLACK_S  # never more than since first shown
    assert report_active(conn, ann, position + 1, 5.0, now=1042.0) == 0.0  # not the open case
    for bad in (-1.0, float("nan"), float("inf"), True, "3", 1e9):
        with pytest.raises(ValueError):
            report_active(conn, ann, position, bad)


def test_the_rating_carries_the_active_time_and_a_rated_case_takes_no_more(study):
    conn, (ann, _) = study
    position = next_position(conn, ann)
    start_case(conn, ann, position, now=100.0)
    report_active(conn, ann, position, 7.5, now=110.0)
    submit_rating(conn, ann, position, Rating(3, 3, 3, True, 3, "yes", time_on_case_s=active_seconds(conn, ann, position)))
    assert conn.execute("SELECT time_on_case_s FROM ratings").fetchone()[0] == 7.5
    assert report_active(conn, ann, position, 5.0, now=120.0) == 0.0


# -- reading order -------------------------------------------------------------------------------------------
def test_two_follow_ups_of_one_prior_are_at_least_half_a_round_apart():
    for n_cases in (4, 8, 25):
        candidates = [{"case_id": c, "id": 2 * c + k, "is_real": k} for c in range(n_cases) for k in (0, 1)]
        for seed in range(30):
            order = [slot.case_id for slot in single_slots(candidates, seed)]
            assert sorted(order) == sorted(c["case_id"] for c in candidates)
            firsts = {case: order.index(case) for case in set(order)}
            gaps = [len(order) - 1 - order[::-1].index(case) - firsts[case] for case in firsts]
            assert min(gaps) >= math.ceil(n_cases / 2), (n_cases, seed, order)
            real = [c["is_real"] for slot in single_slots(candidates, seed) for c in candidates if c["id"] == slot.candidate_ids[0]]
            assert abs(sum(real[:n_cases]) - n_cases / 2) <= 1  # each round is balanced between real and synthetic


def test_reading_orders_differ_between_readers_and_stay_random():
    candidates = [{"case_id": c, "id": 2 * c + k, "is_real": k} for c in range(10) for k in (0, 1)]
    orders = {tuple(s.candidate_ids for s in single_slots(candidates, seed)) for seed in range(40)}
    assert len(orders) == 40
    first_real = sum(next(c["is_real"] for c in candidates if c["id"] == single_slots(candidates, s)[0].candidate_ids[0])
                     for s in range(200))
    assert 60 < first_real < 140


# -- admin summaries -----------------------------------------------------------------------------------------
def test_progress_and_answer_summaries_follow_the_stored_ratings(study):
    conn, (ann, ben) = study
    rng = random.Random(4)
    for _ in range(5):
        position = next_position(conn, ann)
        submit_rating(conn, ann, position, Rating(4, 3, 5, rng.random() < 0.5, 2, "no", time_on_case_s=12.0))
    save_draft(conn, ben, next_position(conn, ben), parse_draft({"a": ["3", None, None, None, None, None]}))
    rows = {r["reader"]: r for r in reader_progress(conn)}
    assert (rows["ann"]["done"], rows["ann"]["left"]) == (5, 3) and rows["ann"]["median time per case"] == "12.0 s"
    assert (rows["ben"]["done"], rows["ben"]["left"]) == (0, 8) and rows["ben"]["last activity (UTC)"] != "never"
    summary = summarise(conn)
    answers = {r["source"]: r for r in summary.answers_table()}
    for source in summary.sources:
        assert source.location == {"yes": 0, "partly": 0, "no": source.ratings}
        assert source.confidence.value == 2.0 and source.median_time_s == 12.0 and source.timed == source.ratings
        assert answers[source.source]["location no"] == f"{source.ratings} (100%)"
    assert sum(s.ratings for s in summary.sources) == 5
    assert summary.to_dict()["sources"][0]["confidence"]["n"] == summary.sources[0].ratings
