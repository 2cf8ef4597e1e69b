"""Statistics against textbook hand computations, and the per-source summary of a small study."""
from __future__ import annotations

import math

import numpy as np
import pytest

from legend_demo.study.analysis import fleiss_kappa, icc_2_1, mean_t_interval, wilson_interval
from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.ratings import Rating, submit_rating
from legend_demo.study.readers import add_reader
from legend_demo.study.reading import next_case
from legend_demo.study.studies import create_study
from legend_demo.study.summary import summarise

pytestmark = pytest.mark.slow  # reader-study statistics: the slow tier (python -m pytest -m slow)


def test_t_interval_matches_hand_computation():
    # x = 1..5: mean 3, s = √2.5, t(0.975, 4) = 2.776445 → half-width 2.776445·√2.5/√5 = 1.963243
    estimate = mean_t_interval([1, 2, 3, 4, 5])
    assert estimate.value == 3 and estimate.n == 5
    assert estimate.low == pytest.approx(1.036757, abs=1e-6) and estimate.high == pytest.approx(4.963243, abs=1e-6)
    assert math.isnan(mean_t_interval([4]).low) and math.isnan(mean_t_interval([]).value)


def test_wilson_interval_matches_newcombe_1998():
    # Newcombe (1998), Stat Med 17:857, example 81/263: Wilson 95% CI 0.2553–0.3662
    estimate = wilson_interval(81, 263)
    assert estimate.value == pytest.approx(81 / 263)
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.2553, 0.3662)
    # 0/10: Wilson lower bound is 0 and upper bound z²/(n+z²) = 3.8415/13.8415
    assert wilson_interval(0, 10).low == 0 and wilson_interval(0, 10).high == pytest.approx(3.8415 / 13.8415, abs=1e-4)
    with pytest.raises(ValueError, match="successes=5, n=3"):
        wilson_interval(5, 3)


def test_fleiss_kappa_matches_fleiss_1971_worked_example():
    # 10 subjects, 14 raters, 5 categories (Fleiss 1971; the standard worked example): P̄ = 0.378, P̄e = 0.213, κ = 0.210
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-5)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)  # perfect agreement
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[3, 0], [1, 1]]))


def test_icc_2_1_matches_shrout_and_fleiss_1979():
    # Shrout & Fleiss (1979), Table 2: 6 targets × 4 judges; ICC(2,1) = 0.29
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_2_1(ratings) == pytest.approx(0.2898, abs=1e-4)
    assert icc_2_1(np.array([[1, 1], [3, 3], [5, 5]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        icc_2_1(np.array([1, 2, 3]))


def test_summary_per_source_matches_the_submitted_ratings(tmp_path):
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / "demo")), seed=9)
    conn = connect(db)
    readers = [add_reader(conn, name, "reader-password") for name in ("r1", "r2")]
    is_real = {}
    for reader, says_synthetic_for_real in zip(readers, (False, True)):
        view = next_case(conn, reader)
        while view is not None:
            candidate = conn.execute("SELECT d.is_real FROM slot_items i JOIN candidates d ON d.id = i.candidate_id "
                                     "WHERE i.reader_id = ? AND i.position = ?", (reader, view.position)).fetchone()[0]
            # realism 5 for real images, 2 for synthetic; r1 always right, r2 calls everything synthetic
            call = True if says_synthetic_for_real else not candidate
            submit_rating(conn, reader, view.position, Rating(5 if candidate else 2, 3, 4, call, 3, "yes"))
            view = next_case(conn, reader)
    summary = summarise(conn)
    by_source = {s.source: s for s in summary.sources}
    assert set(by_source) == {"real", "baseline-blur"} and summary.ratings == 16
    assert by_source["real"].likert["realism"].value == 5 and by_source["baseline-blur"].likert["realism"].value == 2
    assert by_source["real"].turing_accuracy.value == 0.5  # r1 right on 4, r2 wrong on 4
    assert by_source["baseline-blur"].turing_accuracy.value == 1.0
    # real/synthetic calls: agree on the 4 synthetic images, disagree on the 4 real ones → hand-computed Fleiss κ
    # p_i = 1,1,1,1,0,0,0,0 → P̄ = 0.5; p_real = 4/16, p_synth = 12/16 → P̄e = 0.625; κ = (0.5−0.625)/0.375 = −1/3
    assert summary.fleiss_kappa_real_vs_synthetic == pytest.approx(-1 / 3)
    assert summary.agreement_candidates == 8
    assert math.isnan(summary.icc_2_1["faithfulness"])  # every score 3: no variance, ICC undefined
    assert summary.icc_2_1["realism"] == pytest.approx(1.0)  # both readers rate realism identically
