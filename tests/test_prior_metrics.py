"""Gaussian prior (eqs. 5.4–5.5) and CBI / EAR / Attn-IoU (eqs. 4.5–4.7) against hand computations."""
import math

import numpy as np
import pytest

from legend_demo import LesionPoint, attn_iou, cbi, ear, gaussian_prior
from legend_demo.method.metrics import corner_mask, edge_mask
from legend_demo.method.prior import lesion_region, project_points


def test_projection_uses_floor():
    # x = 99 of W = 100 on a 16-wide grid: 99/100·16 = 15.84 → 15; y = 50/200·8 = 2.0 → 2
    assert project_points([LesionPoint(99, 50)], (100, 200), (8, 16)).tolist() == [[2, 15]]
    assert project_points([{"x": 6.24, "y": 0}], (100, 100), (16, 16)).tolist() == [[0, 0]]


def test_prior_matches_the_formula_cell_by_cell():
    prior = gaussian_prior([LesionPoint(40, 70)], image_size=(100, 100), grid=(10, 10), sigma_ratio=0.2)
    sigma = 0.2 * 10
    for i, j in [(7, 4), (0, 0), (9, 9), (5, 2)]:
        expected = math.exp(-((i - 7) ** 2 + (j - 4) ** 2) / (2 * sigma**2))
        assert prior[i, j] == pytest.approx(expected, rel=1e-6)
    assert prior.shape == (10, 10) and prior.dtype == np.float32


def test_prior_aggregates_by_max_not_sum():
    a, b = LesionPoint(30, 30), LesionPoint(34, 30)
    both = gaussian_prior([a, b], (100, 100), (16, 16))
    separate = np.maximum(gaussian_prior([a], (100, 100), (16, 16)), gaussian_prior([b], (100, 100), (16, 16)))
    np.testing.assert_array_equal(both, separate)
    assert both.max() == pytest.approx(1.0)  # a sum would exceed 1 between the two points


def test_prior_without_points_is_zero_and_sigma_scales_with_the_short_side():
    assert not gaussian_prior([], (64, 64), (8, 8)).any()
    wide = gaussian_prior([LesionPoint(50, 50)], (100, 100), (10, 20), sigma_ratio=0.1)  # σ = 1 cell
    assert wide[5, 11] == pytest.approx(math.exp(-1 / 2), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"sigma_ratio": 0.0}, "sigma_ratio=0.0"),
        ({"sigma_ratio": -0.1}, "sigma_ratio=-0.1"),
        ({"grid": (0, 16)}, "grid=(0, 16)"),
        ({"image_size": (100, 0)}, "image_size=(100, 0)"),
    ],
)
def test_prior_rejects_bad_parameters(kwargs, needle):
    args = {"points": [LesionPoint(5, 5)], "image_size": (100, 100), "grid": (16, 16), "sigma_ratio": 0.1} | kwargs
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        gaussian_prior(**args)


@pytest.mark.parametrize("point", [LesionPoint(100, 5), LesionPoint(-1, 5), LesionPoint(5, 100.5)])
def test_points_outside_the_image_are_rejected(point):
    with pytest.raises(ValueError, match="outside the 100x100 image"):
        gaussian_prior([point], (100, 100), (16, 16))


def test_dict_points_are_accepted_and_bad_dicts_named():
    assert gaussian_prior([{"x": 10, "y": 10, "confidence": 4}], (100, 100), (4, 4)).max() == 1.0
    with pytest.raises(ValueError, match="lacks y"):
        gaussian_prior([{"x": 10}], (100, 100), (4, 4))


def test_corner_and_band_widths_on_small_grids():
    # 16×16 (FLUX at 256²): α·16 = 1.92 → 2-cell boxes; β·16 = 1.28 → 1-cell band
    assert corner_mask((16, 16)).sum() == 4 * 2 * 2
    assert edge_mask((16, 16)).sum() == 16 * 16 - 14 * 14
    # 4×4: α·4 = 0.48 and β·4 = 0.32 round to 0, kept at 1 cell
    assert corner_mask((4, 4)).sum() == 4 and edge_mask((4, 4)).sum() == 12
    # 32×32 (AR grid): α·32 = 3.84 → 4; β·32 = 2.56 → 3
    assert corner_mask((32, 32)).sum() == 4 * 16 and edge_mask((32, 32)).sum() == 32 * 32 - 26 * 26


def test_cbi_and_ear_on_hand_made_maps():
    uniform = np.ones((16, 16))
    assert cbi(uniform) == pytest.approx(16 / 256)
    assert ear(uniform) == pytest.approx(60 / 256)
    corner = np.zeros((16, 16))
    corner[0, 15] = 3.0
    assert cbi(corner) == 1.0 and ear(corner) == 1.0
    centre = np.zeros((16, 16))
    centre[8, 8] = 1.0
    assert cbi(centre) == 0.0 and ear(centre) == 0.0
    half = np.zeros((10, 10))
    half[0, 0], half[5, 5] = 1.0, 1.0  # one corner cell, one centre cell
    assert cbi(half) == 0.5 and ear(half) == 0.5


def test_attn_iou_is_the_share_inside_omega():
    point = [LesionPoint(50, 50)]
    region = lesion_region(point, (100, 100), (16, 16), 0.1, 0.5)
    uniform = np.ones((16, 16))
    assert attn_iou(uniform, point, (100, 100)) == pytest.approx(region.sum() / 256)
    inside = region.astype(float)
    assert attn_iou(inside, point, (100, 100)) == 1.0
    assert attn_iou(1.0 - inside, point, (100, 100)) == 0.0


def test_omega_threshold_is_half_the_maximum():
    region = lesion_region([LesionPoint(50, 50)], (100, 100), (20, 20), sigma_ratio=0.1, eta=0.5)
    sigma = 2.0  # cells within d² ≤ 2σ² ln 2 of (10, 10)
    ii, jj = np.mgrid[0:20, 0:20]
    expected = ((ii - 10) ** 2 + (jj - 10) ** 2) <= 2 * sigma**2 * math.log(2)
    np.testing.assert_array_equal(region, expected)


@pytest.mark.parametrize(
    "heatmap, needle",
    [
        (np.zeros((4, 4)), "sums to 0"),
        (-np.ones((4, 4)), "negative"),
        (np.ones(4), "2-D"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.ones((0, 0)), "non-empty"),
    ],
)
def test_metrics_reject_bad_heatmaps(heatmap, needle):
    with pytest.raises(ValueError, match=needle):
        cbi(heatmap)


def test_attn_iou_needs_points():
    with pytest.raises(ValueError, match="at least one lesion point"):
        attn_iou(np.ones((4, 4)), [], (10, 10))


def test_layer_lists_parse_sorted_unique_and_name_the_flag():
    from legend_demo.method.layer_spec import parse_layers

    assert parse_layers(" 17, 0;1,17 ") == (0, 1, 17)
    assert parse_layers("") is None and parse_layers(None) is None
    with pytest.raises(ValueError, match="--vital-layers must be comma-separated whole numbers, got '0,x'"):
        parse_layers("0,x", "--vital-layers")
