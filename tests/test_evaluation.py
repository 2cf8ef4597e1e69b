"""Evaluation (issue 5 §4): PSNR/SSIM by hand, direction signs, case loading errors, CLI end to end on tiny-random."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from legend_demo.cli import main
from legend_demo.evaluation.case_metrics import dilation_radius, film_quality, image_quality, outside_region, tiling_ratio
from legend_demo.evaluation.cases import load_cases
from legend_demo.evaluation.direction import expected_sign
from legend_demo.evaluation.image_metrics import K1, psnr, ssim
from legend_demo.evaluation.summary import mean_ci
from legend_demo.core.geometry import SquareFrame

SIDE = 64


def _image(seed: int = 0, side: int = SIDE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    return np.clip(0.4 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy) + 0.05 * rng.standard_normal((side, side)), 0, 1)


# --- PSNR / SSIM by hand -------------------------------------------------------------------------------------

def test_psnr_of_constant_offset():
    a = np.full((32, 32), 0.3)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert psnr(a, a + 0.1, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.01))
    assert psnr(a, a) == math.inf


def test_psnr_mask_counts_only_masked_pixels():
    a = np.zeros((16, 16))
    b = a.copy()
    b[:8] = 0.5  # error only in the top half
    bottom = np.zeros((16, 16), bool)
    bottom[8:] = True
    assert psnr(a, b, bottom) == math.inf
    assert psnr(a, b, ~bottom) == pytest.approx(10 * math.log10(1 / 0.25))
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.125))


def test_ssim_identical_negated_and_constant():
    a = _image()
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 1.0 - a) < 0
    x, y = 0.2, 0.6  # constant images: no variance, SSIM = luminance term (2xy + C1) / (x² + y² + C1)
    c1 = K1**2
    assert ssim(np.full((32, 32), x), np.full((32, 32), y)) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1))


def test_ssim_symmetry_and_invariances():
    a, b = _image(0), _image(1)
    value = ssim(a, b)
    assert 0 < value < 1
    assert ssim(b, a) == pytest.approx(value)
    assert ssim(a.T, b.T) == pytest.approx(value)
    assert ssim(a[:, ::-1], b[:, ::-1]) == pytest.approx(value)
    assert ssim(a, b) > ssim(a, 0.5 * b)  # a contrast loss lowers SSIM


def test_ssim_mask_ignores_differences_elsewhere():
    a = _image()
    b = a.copy()
    b[:, 40:] = 1.0 - b[:, 40:]
    left = np.zeros_like(a, dtype=bool)
    left[:, :30] = True  # ≥ 5 px (the window radius) away from the change
    assert ssim(a, b, left) == pytest.approx(1.0)
    assert ssim(a, b) < 0.9


def test_metric_input_errors_name_the_values():
    with pytest.raises(ValueError, match=r"\(8, 8\) and \(8, 9\)"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="selects no pixels"):
        ssim(_image(), _image(), np.zeros((SIDE, SIDE), bool))
    with pytest.raises(ValueError, match="too small"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


# --- direction signs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["consolidation", "nodule", "effusion", "cardiomegaly", "Pleural_Effusion", "mass"])
@pytest.mark.parametrize("direction, sign", [("new", 1), ("increased", 1), ("decreased", -1), ("resolved", -1),
                                             ("unchanged", 0)])
def test_opacities_brighten_when_worse(kind, direction, sign):
    assert expected_sign(kind, direction) == sign


@pytest.mark.parametrize("direction, sign", [("new", -1), ("increased", -1), ("decreased", 1), ("resolved", 1),
                                             ("unchanged", 0)])
def test_pneumothorax_darkens_when_worse(direction, sign):
    assert expected_sign("pneumothorax", direction) == sign


def test_unknown_type_or_direction_is_loud():
    with pytest.raises(ValueError, match="'fracture'"):
        expected_sign("fracture", "new")
    with pytest.raises(ValueError, match="'worse'"):
        expected_sign("nodule", "worse")


# --- per-case image metrics ----------------------------------------------------------------------------------

def test_image_quality_by_hand():
    frame = SquareFrame.fit((SIDE, SIDE), SIDE)
    reference = _image().astype(np.float32)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[20:30, 20:30] = True
    followup = reference.copy()
    followup[mask] -= 0.1  # darker inside the lesion only
    row = image_quality(followup, reference, frame, mask, sign=-1)
    assert row["psnr_out"] is None  # identical outside: PSNR is +inf, stored as null
    assert row["ssim_out"] < 1.0  # the SSIM window (radius 5) reaches past the 1-px dilation
    assert row["lesion_change"] == pytest.approx(-0.1, abs=1e-6)
    assert row["lesion_fidelity"] == pytest.approx(0.1, abs=1e-6)
    assert image_quality(followup, reference, frame, mask, sign=0)["lesion_fidelity"] is None


def test_outside_region_drops_dilated_mask_and_padding():
    frame = SquareFrame.fit((64, 32), 64)  # pad: 16 rows of padding above and below
    mask = np.zeros((32, 64), bool)
    mask[10, 10] = True
    outside = outside_region(frame, mask)
    assert dilation_radius(64) == 1 and dilation_radius(256) == 4
    assert not outside[:16].any() and not outside[48:].any()
    assert not outside[26, 10] and not outside[26, 11] and not outside[25, 10]  # lesion + 1 px ring
    assert outside[26, 13]


def test_mean_ci_student_t():
    stat = mean_ci([1.0, 2.0, 3.0, None])
    assert stat["mean"] == 2.0 and stat["n"] == 3
    assert stat["ci95"] == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert mean_ci([5.0])["ci95"] is None and mean_ci([])["mean"] is None


# --- a tiny data set on disk ---------------------------------------------------------------------------------

CASES = [("a", "consolidation", "new", "test"), ("b", "pneumothorax", "increased", "test"),
         ("c", "nodule", "unchanged", "test"), ("d", "effusion", "resolved", "train")]


def _write_case(root: Path, cid: str, kind: str, direction: str, split: str, seed: int) -> None:
    folder = root / cid
    folder.mkdir(parents=True)
    reference = _image(seed)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[24:40, 16:32] = True
    follow_up = reference + 0.2 * expected_sign(kind, direction) * mask
    for name, image in (("ref", reference), ("flu", follow_up), ("mask", mask.astype(float))):
        Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"{cid}-{name}.png")
    record = {"id": cid, "progression-description": f"{direction} left {kind}",
              "source-description": "a frontal chest radiograph", "split": split,
              "change": {"type": kind, "side": "left", "direction": direction, "severity": "mild"},
              "lesion_points": [{"x": 24, "y": 32, "confidence": 5}]}
    (folder / f"{cid}.json").write_text(json.dumps(record))


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    root = tmp_path / "data"
    for seed, case in enumerate(CASES):
        _write_case(root, *case, seed=seed)
    return root


def test_load_cases_filters_split_and_limits(tiny_data):
    cases = load_cases(tiny_data, "test")
    assert [c.case_id for c in cases] == ["a", "b", "c"]
    assert [c.sign for c in cases] == [1, -1, 0]
    assert cases[0].reference.shape == (SIDE, SIDE) and cases[0].mask.sum() == 16 * 16
    assert len(load_cases(tiny_data, "test", limit=1)) == 1


@pytest.mark.parametrize("problem, message", [("missing", "does not exist"), ("split", "no cases in split 'val'"),
                                              ("json", "malformed JSON"), ("direction", "unknown change direction")])
def test_bad_inputs_exit_2(tiny_data, capsys, problem, message):
    args = ["evaluate", "--data", str(tiny_data), "--engine", "tiny-random", "--steps", "2"]
    if problem == "missing":
        args[2] = str(tiny_data / "nope")
    elif problem == "split":
        args += ["--split", "val"]
    elif problem == "json":
        (tiny_data / "b" / "b.json").write_text("{not json")
    else:
        record = json.loads((tiny_data / "a" / "a.json").read_text())
        record["change"]["direction"] = "worse"
        (tiny_data / "a" / "a.json").write_text(json.dumps(record))
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a whole evaluation run
def test_evaluate_cli_end_to_end(tiny_data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--data", str(tiny_data), "--engine", "tiny-random", "--steps", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    for label in ("full method", "GBCA off (s = 0)", "no injection", "points mirrored", "opposite direction",
                  "real follow-up"):
        assert label in printed
    assert printed.count("PASS") + printed.count("FAIL") == 9  # no small finding with a change: no small-Dice check
    assert "Shape Dice by finding type" in printed
    report = json.loads(out.read_text())
    assert report["n_cases"] == 3 and report["mask_dilation_px"] == 1
    model_rows = [r for r in report["rows"] if r["config"] != "data"]
    assert {r["config"] for r in model_rows} == {"full", "gbca_off", "no_inject", "mirrored", "opposite"}
    assert len(model_rows) == 9 + 2 * 2  # the probes run only for the two cases with a change
    for row in model_rows:
        for key in ("recon_psnr", "psnr_out", "ssim_out", "lesion_change", "tiling", "change_tiling", "attn_iou", "cbi", "ear"):
            assert isinstance(row[key], float), (key, row)
        assert (row["lesion_fidelity"] is None) == (row["sign"] == 0) == (row["row_fidelity"] is None)
    data_rows = {r["case"]: r for r in report["rows"] if r["config"] == "data"}
    assert data_rows["a"]["lesion_fidelity"] > 0.1 and data_rows["b"]["lesion_fidelity"] > 0.1  # signs agree
    assert abs(data_rows["c"]["lesion_change"]) < 1e-3
    assert set(report["aggregates"]) == {"full", "gbca_off", "no_inject", "mirrored", "opposite", "data"}
    assert report["aggregates"]["full"]["lesion_fidelity"]["n"] == 2
    assert report["aggregates"]["full"]["unchanged_change"]["n"] == 1
    assert [c["metric"] for c in report["checks"]] == ["attn_iou", "lesion_fidelity", "psnr_out", "lesion_fidelity",
                                                       "lesion_fidelity", "lesion_fidelity", "psnr_out", "change_tiling",
                                                       "shape_dice"]
    assert set(report["shape_by_type"]["full"]) == {"consolidation", "nodule", "pneumothorax"}
    assert report["shape_by_type"]["full"]["nodule"]["n"] == 0  # unchanged: no shape to score


def test_fixed_strength_diagnostic_replaces_only_the_gbca_rows():
    from legend_demo.evaluation.evaluate import CONFIGURATIONS, configurations

    assert configurations(None) == CONFIGURATIONS
    full, off, no_inject = configurations(4.0)
    assert (full.bias_strength, full.inject) == (4.0, True) and "fixed s = 4" in full.label
    assert off == CONFIGURATIONS[1] and off.bias_strength == 0.0
    assert (no_inject.bias_strength, no_inject.inject) == (4.0, False)
    with pytest.raises(ValueError, match="--bias-strength=0.0 must be positive"):
        configurations(0.0)


def test_probes_change_only_the_points_or_the_text_never_the_strength():
    from legend_demo.evaluation.evaluate import configurations, probes_of

    for full in (configurations(None)[0], configurations(2.0)[0]):
        mirrored, opposite = probes_of(full)
        assert (mirrored.key, opposite.key) == ("mirrored", "opposite")
        assert {(p.bias_strength, p.inject) for p in (mirrored, opposite)} == {(full.bias_strength, full.inject)}


def test_film_quality_measures_the_film_at_its_own_resolution():
    reference = _image().astype(np.float32)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[20:30, 20:30] = True
    followup = reference + 0.1 * mask
    row = film_quality(followup, reference, mask, sign=1)
    assert row["psnr_out"] is None and row["lesion_fidelity"] == pytest.approx(0.1, abs=1e-6)
    followup[0, 0] += 0.5  # one changed pixel far from the lesion: PSNR outside becomes finite
    assert film_quality(followup, reference, mask, sign=1)["psnr_out"] < 60


def test_tiling_ratio_sees_token_blocks_and_not_smooth_images():
    smooth = _image(3)
    blocks = np.kron(np.random.default_rng(0).random((8, 8)), np.ones((8, 8)))  # 8-px tiles
    assert 0.8 < tiling_ratio(smooth, 8) < 1.2
    assert tiling_ratio(blocks, 8) > 10


def test_probes_mirror_points_and_reverse_the_direction():
    from legend_demo.evaluation.probes import mirrored_points, opposite_text
    from legend_demo.core.points import LesionPoint

    assert mirrored_points([LesionPoint(10, 5)], 64)[0].x == 54
    assert mirrored_points([LesionPoint(0, 5)], 64)[0].x < 64  # stays inside the image
    assert opposite_text({"type": "consolidation", "side": "right", "lobe": "lower", "direction": "new"}) == \
        "Interval resolution of the right lower lobe consolidation."
    assert opposite_text({"type": "effusion", "side": "left", "direction": "resolved"}) == "New left pleural effusion."
    with pytest.raises(ValueError, match="fracture"):
        opposite_text({"type": "fracture", "direction": "new"})
