"""Blinded reading orders: balanced between real and synthetic, seeded per reader, deterministic per study."""
from __future__ import annotations

import random

import pytest

from legend_demo.study.assignment import balanced_shuffle, reader_seed
from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.readers import add_reader
from legend_demo.study.studies import create_study

pytestmark = pytest.mark.slow  # reader-study database: the slow tier (python -m pytest -m slow)


@pytest.mark.parametrize("n_real,n_synthetic", [(10, 10), (6, 18), (5, 2), (1, 7)])
def test_every_prefix_of_the_order_stays_close_to_the_overall_mix(n_real, n_synthetic):
    real = [("r", i) for i in range(n_real)]
    synthetic = [("s", i) for i in range(n_synthetic)]
    for seed in range(20):
        order = balanced_shuffle(real, synthetic, random.Random(seed))
        assert sorted(order) == sorted(real + synthetic)  # every item exactly once
        share = n_real / (n_real + n_synthetic)
        block = (n_real + n_synthetic) / max(1, min(n_real, n_synthetic) // 2)  # items per permuted block
        for k in range(1, len(order) + 1):
            reals = sum(1 for kind, _ in order[:k] if kind == "r")
            assert abs(reals - share * k) <= block, (seed, k, order)


def test_orders_are_random_across_seeds_not_a_fixed_pattern():
    real, synthetic = list(range(10)), list(range(100, 110))
    orders = {tuple(balanced_shuffle(real, synthetic, random.Random(s))) for s in range(30)}
    assert len(orders) == 30
    first_is_real = [balanced_shuffle(real, synthetic, random.Random(s))[0] < 100 for s in range(200)]
    assert 60 < sum(first_is_real) < 140  # the first image is not predictably real or synthetic


def test_reader_seed_is_stable_and_distinct():
    assert reader_seed(7, "alice") == reader_seed(7, "alice")
    assert len({reader_seed(7, "alice"), reader_seed(7, "bob"), reader_seed(8, "alice")}) == 3


def _orders(tmp_path, name, seed, pair_mode=False):
    db = tmp_path / f"{name}.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / f"demo-{name}")), seed=seed, pair_mode=pair_mode)
    conn = connect(db)
    for reader in ("alice", "bob", "carol"):
        add_reader(conn, reader, "reader-password")
    rows = conn.execute(
        """SELECT p.name, i.position, i.side, c.case_key, d.source FROM slot_items i JOIN readers p ON p.id = i.reader_id
           JOIN candidates d ON d.id = i.candidate_id JOIN cases c ON c.id = d.case_id ORDER BY p.name, i.position, i.side"""
    ).fetchall()
    orders = {}
    for row in rows:
        orders.setdefault(row["name"], []).append((row["position"], row["side"], row["case_key"], row["source"]))
    return orders


def test_orders_are_deterministic_per_reader_and_study_and_cover_every_candidate(tmp_path):
    first, again, other_study = _orders(tmp_path, "a", 11), _orders(tmp_path, "b", 11), _orders(tmp_path, "c", 12)
    assert first == again  # same study seed and reader → same order
    assert first != other_study
    assert len({tuple(o) for o in first.values()}) == 3  # each reader has their own order
    for order in first.values():
        assert len({(case, source) for _, _, case, source in order}) == len(order) == 8
        assert [p for p, *_ in order] == list(range(1, 9))


def test_pair_mode_shows_both_candidates_with_the_real_one_left_half_the_time(tmp_path):
    orders = _orders(tmp_path, "pairs", 5, pair_mode=True)
    for order in orders.values():
        positions = {p for p, *_ in order}
        assert positions == {1, 2, 3, 4}
        real_left = sum(1 for p, side, _, source in order if side == 0 and source == "real")
        assert real_left == 2  # 4 cases: balanced sides
