"""The thesis post-processing: drop confidence < 3; merge points closer than 0.03·min(W, H) (§4.6)."""
from __future__ import annotations

import pytest

from legend_demo.grounding.postprocess import finish, keep_confident, merge_close, rescale, to_pixels
from legend_demo.core.points import LesionPoint

SIZE = (1000, 500)  # δ = 0.03 · 500 = 15 px


def test_points_closer_than_delta_merge_into_their_mean_with_the_higher_confidence():
    merged = merge_close([LesionPoint(100, 100, 3, "a"), LesionPoint(110, 104, 5, "b")], SIZE)
    assert len(merged) == 1
    assert merged[0].x == pytest.approx(105) and merged[0].y == pytest.approx(102)
    assert merged[0].confidence == 5
    assert merged[0].label == "a; b"


def test_delta_uses_the_shorter_side():
    apart = [LesionPoint(100, 100, 4), LesionPoint(116, 100, 4)]  # 16 px: > 0.03·500, < 0.03·1000
    assert len(merge_close(apart, SIZE)) == 2
    assert len(merge_close(apart, (1000, 1000))) == 1


def test_points_exactly_delta_apart_stay_separate():
    assert len(merge_close([LesionPoint(0, 0, 4), LesionPoint(15, 0, 4)], SIZE)) == 2


def test_a_group_of_three_merges_to_the_mean_of_all_three():
    merged = merge_close([LesionPoint(100, 100, 3), LesionPoint(108, 100, 4), LesionPoint(104, 107, 3)], SIZE)
    assert len(merged) == 1
    assert merged[0].x == pytest.approx(104) and merged[0].y == pytest.approx(307 / 3)
    assert merged[0].confidence == 4


def test_far_points_are_untouched_and_order_is_kept():
    points = [LesionPoint(10, 10, 5, "first"), LesionPoint(900, 400, 3, "second")]
    assert merge_close(points, SIZE) == points


def test_confidence_below_3_is_dropped():
    kept = keep_confident([LesionPoint(1, 1, c) for c in (1, 2, 3, 4, 5)])
    assert [p.confidence for p in kept] == [3, 4, 5]


def test_low_confidence_points_do_not_pull_merged_points():
    result = finish([LesionPoint(100, 100, 5), LesionPoint(110, 100, 2)], SIZE)
    assert result == [LesionPoint(100, 100, 5)]


def test_to_pixels_rounds_and_clamps_inside_the_image():
    out = to_pixels([LesionPoint(-3.2, 499.7, 4), LesionPoint(12.5, 7.4, 5)], SIZE)
    assert [(p.x, p.y) for p in out] == [(0, 499), (12, 7)]  # round-half-even on 12.5
    assert all(isinstance(p.x, int) and isinstance(p.y, int) for p in out)


def test_rescale_maps_pixel_centres_between_sizes():
    (p,) = rescale([LesionPoint(0, 49, 5)], (100, 50), (200, 100))
    assert p.x == pytest.approx(0.5) and p.y == pytest.approx(98.5)
    (back,) = rescale([p], (200, 100), (100, 50))
    assert back.x == pytest.approx(0) and back.y == pytest.approx(49)


def test_bad_image_size_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="0x10"):
        merge_close([LesionPoint(1, 1, 5)], (0, 10))
