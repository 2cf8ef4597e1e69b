"""End to end through gradio_client against `python app.py` on 127.0.0.1 with the tiny test engine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app_harness import app_url, example_png  # noqa: F401 - fixture

pytestmark = pytest.mark.slow  # starts the app server: the slow tier (python -m pytest -m slow)

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(app_url):  # noqa: F811
    return gradio_client.Client(app_url, verbose=False)


def test_ground_returns_points_in_original_pixels(client):
    result = client.predict(gradio_client.handle_file(example_png()), "interval increase of right lower lobe consolidation",
                            api_name="/ground")
    assert result["image_size"] == [448, 512]
    assert result["points"], result
    point = result["points"][0]
    assert point["x"] < 448 / 2 < 448 and 512 / 2 < point["y"] < 512  # patient right = image left, lower zone


def test_generate_with_defaults_gives_labelled_synthetic_outputs(client):
    followup, report, files = client.predict(gradio_client.handle_file(example_png()),
                                             "interval increase of right lower lobe consolidation", api_name="/generate")
    assert Path(followup).suffix == ".png" and Path(followup).stat().st_size > 0
    assert report["synthetic"] is True and report["engine"] == "tiny-random" and report["checkpoint"]
    assert report["points"], "no points: /generate should ground automatically when none are given"
    assert report["layers"] and all(0 <= layer["cbi"] <= 1 for layer in report["layers"])
    names = sorted(Path(f).name for f in files)
    assert names == ["synthetic_followup.dcm", "synthetic_followup.png", "synthetic_followup_report.json",
                     "synthetic_model_view.png"]
    import pydicom
    from PIL import Image

    ds = pydicom.dcmread(next(f for f in files if f.endswith(".dcm")))
    assert "SYNTHETIC" in str(ds.PatientName).upper() and ds.Columns == 448 and ds.Rows > 512
    for path in [followup] + [f for f in files if f.endswith(".png")]:  # every image that leaves is labelled
        with Image.open(path) as written:
            assert "SYNTHETIC" in written.text["Description"]
    with Image.open(followup) as film:  # the film at the prior's own width, the band below its 512 rows
        assert film.size[0] == 448 and film.size[1] > 512
    assert report["output"]["mode"] == "composite"
    assert any("orientation" in w for w in report["warnings"])  # a PNG: the sides are assumed, and the report says so
    assert all("0.30W" not in w for w in report["warnings"])  # clinician words; the technical text is in the details
    assert isinstance(report["warning_details"], list)
    assert report["points"][0]["label"].endswith("(right lower lobe)")  # the page's wording, not "(RLL)"


def test_ground_speaks_the_pages_words(client):
    result = client.predict(gradio_client.handle_file(example_png()), "new small left pleural effusion",
                            api_name="/ground")
    assert result["points"][0]["label"] == "small effusion, new (left costophrenic angle)"
    assert any("orientation" in w for w in result["warnings"])


def test_generate_refuses_at_once_when_there_is_nothing_to_change(client):
    image = gradio_client.handle_file(example_png())
    with pytest.raises(gradio_client.exceptions.AppError, match="film unchanged"):
        client.predict(image, "new effusion", points=[], api_name="/generate")
    with pytest.raises(gradio_client.exceptions.AppError, match="Nothing in the description could be placed"):
        client.predict(image, "the patient is well", api_name="/generate")


def test_ground_then_generate_with_edited_points_samples_and_comparison(client):
    image = gradio_client.handle_file(example_png())
    grounded = client.predict(image, "new small left pleural effusion", api_name="/ground")
    points = [{**p, "x": p["x"] - 10} for p in grounded["points"]]  # the user moved the point
    _, report, _ = client.predict(image, "new small left pleural effusion", points=json.dumps(points),
                                  sigma_ratio=0.2, bias_strength=2.0, seed=7, num_samples=2,
                                  compare_gbca_off=True, api_name="/generate")
    assert [p["x"] for p in report["points"]] == pytest.approx([p["x"] for p in points])
    assert report["sigma_ratio"] == 0.2 and report["bias_strength"] == 2.0 and report["seed"] == 7
    assert [s["seed"] for s in report["samples"]] == [7, 8]
    assert report["gbca_off"]["seed"] == 7 and report["gbca_off"]["bias_strength"] == 0.0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"hello", "not supported"),
        ("fake.png", b"this is not a png at all" * 20, "Image problem"),
        ("empty.png", b"", "empty"),
    ],
)
def test_bad_uploads_give_a_message_not_a_traceback(client, tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(gradio_client.exceptions.AppError, match=message) as info:
        client.predict(gradio_client.handle_file(str(bad)), "new effusion", api_name="/generate")
    assert "Traceback" not in str(info.value)


def test_out_of_range_parameters_are_rejected_with_the_value(client):
    with pytest.raises(gradio_client.exceptions.AppError, match="sigma_ratio=0.9"):
        client.predict(gradio_client.handle_file(example_png()), "new effusion", sigma_ratio=0.9, api_name="/generate")
    with pytest.raises(gradio_client.exceptions.AppError, match="outside"):
        client.predict(gradio_client.handle_file(example_png()), "new effusion",
                       points=[{"x": 5000, "y": 10}], api_name="/generate")
