"""Lung fields from classical CV on a drawn chest, and the coarse fallback when they can't be found."""
from __future__ import annotations

import numpy as np
import pytest

from legend_demo.grounding.anatomy import zone_point
from legend_demo.grounding.lung_fields import coarse_lung_fields, estimate_lung_fields
from legend_demo.synth.drawing import draw_chest


@pytest.mark.parametrize("size", [(400, 480), (640, 360), (1500, 1800)])
def test_lung_boxes_match_the_drawn_lungs(size):
    chest, right, left = draw_chest(*size)
    fields = estimate_lung_fields(chest)
    assert fields.source == "image", fields.reason
    for box, lung in ((fields.image_left, right), (fields.image_right, left)):
        width, height = size
        assert box.x0 == pytest.approx(lung.centre[0] - lung.axes[0], abs=0.03 * width)
        assert box.x1 == pytest.approx(lung.centre[0] + lung.axes[0], abs=0.03 * width)
        assert box.y0 == pytest.approx(lung.top, abs=0.03 * height)
        assert box.y1 == pytest.approx(lung.top + lung.height, abs=0.03 * height)


def test_every_zone_centre_is_inside_its_lung():
    chest, right, left = draw_chest(400, 480)
    fields = estimate_lung_fields(chest)
    for side, lung in (("right", right), ("left", left)):
        for zone in ("upper", "middle", "lower", "apex", "base", "perihilar", "retrocardiac", "costophrenic"):
            x, y = zone_point(fields, side, zone)
            assert lung.contains(x, y), (side, zone, x, y)


def test_perihilar_is_medial_and_costophrenic_is_lateral():
    chest, _, _ = draw_chest(400, 480)
    fields = estimate_lung_fields(chest)
    for side, medial_sign in (("right", 1), ("left", -1)):  # image-left lung's medial side is to its right
        middle_x, _ = zone_point(fields, side, "middle")
        hilar_x, _ = zone_point(fields, side, "perihilar")
        angle_x, _ = zone_point(fields, side, "costophrenic")
        assert medial_sign * (hilar_x - middle_x) > 0
        assert medial_sign * (angle_x - middle_x) < 0


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).random((256, 256)).astype(np.float32),  # uniform noise
    np.full((200, 300), 0.5, np.float32),  # blank
    np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1)),  # ramp
])
def test_implausible_images_fall_back_to_the_coarse_centres_with_a_reason(image):
    fields = estimate_lung_fields(image)
    assert fields.source == "coarse"
    assert fields.reason


def test_coarse_zone_centres_are_the_thesis_numbers():
    width, height = 500, 300
    fields = coarse_lung_fields((width, height))
    for side, fx in (("right", 0.30), ("left", 0.70)):  # patient right = image left
        for zone, fy in (("upper", 0.20), ("middle", 0.50), ("lower", 0.80)):
            assert zone_point(fields, side, zone) == pytest.approx((fx * width, fy * height))


def test_one_lung_only_is_not_accepted():
    chest, right, _ = draw_chest(400, 480)
    one_sided = chest.copy()
    one_sided[:, 220:] = 0.75  # the image-right lung is filled in (white-out)
    fields = estimate_lung_fields(one_sided)
    assert fields.source == "coarse"


def test_rejects_non_2d_input_loudly():
    with pytest.raises(ValueError, match="shape"):
        estimate_lung_fields(np.zeros((10, 10, 3), np.float32))
