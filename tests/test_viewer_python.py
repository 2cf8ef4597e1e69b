"""The viewer's Python side (no browser): film payloads, window presets, side markers, the editor value, points tied
to their text, clinician labels, shared map scales and metric columns."""
from __future__ import annotations

import numpy as np
import pytest

from legend_demo.core.points import LesionPoint


@pytest.fixture(scope="module")
def rg1():
    pydicom_data = pytest.importorskip("pydicom.data")
    from legend_demo.core.image_io import load_image

    return load_image(pydicom_data.get_testdata_file("RG1_UNCI.dcm"))  # real PA chest CR, MONOCHROME1, L\F


def test_film_payload_carries_more_than_8_bits_and_decodes_exactly():
    from legend_demo.ui.viewer import FILM_VIEW_BITS, decode_payload, film_payload, quantize

    ramp = np.linspace(0.2, 0.21, 300 * 200, dtype=np.float32).reshape(300, 200)  # 1 % of the range
    payload = film_payload(ramp)
    samples = decode_payload(payload)
    assert samples.shape == (300, 200) and np.array_equal(samples, quantize(ramp))
    assert FILM_VIEW_BITS > 8 and len(np.unique(samples)) > len(np.unique(np.round(ramp * 255)))
    changed = ramp.copy()
    changed[100:120, 50:80] += 0.05
    diff = film_payload(changed, ramp, payload["key"])  # a composite sent as its difference from the prior
    assert diff["base"] == payload["key"] and len(diff["data"]) < len(payload["data"]) / 4
    assert np.array_equal(decode_payload(diff, samples), quantize(changed))


def test_film_payload_shrinks_large_films_and_refuses_values_outside_0_1():
    from legend_demo.ui.viewer import FILM_VIEW_MAX_SIDE, film_payload

    payload = film_payload(np.full((3000, 1500), 0.5, np.float32))
    assert max(payload["w"], payload["h"]) == FILM_VIEW_MAX_SIDE and payload["w"] == FILM_VIEW_MAX_SIDE // 2
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        film_payload(np.full((64, 64), 1.5, np.float32))
    with pytest.raises(ValueError, match="base"):
        film_payload(np.zeros((64, 64), np.float32), np.zeros((64, 64), np.float32))


def test_window_presets_on_a_real_chest_film_follow_its_tissues(rg1):
    from legend_demo.ui.viewer import window_presets

    presets = window_presets(rg1.array, rg1.dicom_info)
    assert presets["default"] == [0.5, 1.0] and presets["source"] == "lung fields of this film"
    lung_c, lung_w = presets["lung"]
    mediastinum_c, mediastinum_w = presets["mediastinum"]
    assert lung_c < mediastinum_c  # lungs are dark, the mediastinum bright (dense tissue bright)
    assert 0 < lung_w < 1 and 0 < mediastinum_w < 1


def test_window_presets_without_lungs_say_where_they_came_from():
    from legend_demo.ui.viewer import window_presets

    pydicom_data = pytest.importorskip("pydicom.data")
    from legend_demo.core.image_io import load_image

    tibia = load_image(pydicom_data.get_testdata_file("RG3_UNCI.dcm"))  # a real film that is not a chest
    presets = window_presets(tibia.array, tibia.dicom_info)
    assert "no lung fields" in presets["source"] and presets["lung"][0] < presets["mediastinum"][0]


def test_side_markers_follow_patient_orientation(rg1):
    from legend_demo.ui.viewer import side_markers

    standard = side_markers(rg1.dicom_info)
    assert (standard["left"], standard["right"], standard["assumed"]) == ("R", "L", False)
    mirrored = side_markers({**rg1.dicom_info, "PatientOrientation": "R\\F"})
    assert (mirrored["left"], mirrored["right"]) == ("L", "R")
    turned = side_markers({"PatientOrientation": "F\\L"})
    assert {turned["top"], turned["bottom"]} == {"R", "L"} and turned["left"] == turned["right"] == ""
    untagged = side_markers({})
    assert (untagged["left"], untagged["assumed"]) == ("R", True) and "assumed" in untagged["note"]


def test_editor_value_never_carries_pixels_or_window_level():
    from legend_demo.ui.point_editor import editor_value, film_props

    value = editor_value(np.zeros((300, 200), np.float32), [LesionPoint(50, 60, 4, "x")], 0.1, for_text=" new  RLL ")
    assert set(value) == {"width", "height", "points", "found", "for_text", "rev", "origin", "overlay"}
    assert value["for_text"] == "new RLL" and value["found"] == []
    assert value["overlay"]["prior"].startswith("data:image/png") and value["overlay"]["region"].startswith("data:")
    assert editor_value(np.zeros((300, 200), np.float32), [], 0.1)["rev"] != value["rev"]  # a fresh undo history

    class Film:  # the film travels once, as the component's `film` property
        array = np.full((300, 200), 0.5, np.float32)
        dicom_info: dict = {}

    props = film_props(Film())
    assert props["film"]["w"] == 200 and props["markers"]["left"] == "R" and "lung" in props["presets"]


def test_points_are_stale_only_when_found_for_another_text():
    from legend_demo.ui.point_editor import editor_value, points_stale

    found = editor_value(np.zeros((100, 100), np.float32), [LesionPoint(10, 10)], 0.1, for_text="RLL consolidation")
    assert not points_stale(found, "RLL   consolidation ")
    assert points_stale(found, "Left pleural effusion has increased")
    by_hand = editor_value(np.zeros((100, 100), np.float32), [LesionPoint(10, 10)], 0.1)
    assert not points_stale(by_hand, "anything")  # placed by hand: not found for any text
    assert not points_stale({**found, "points": []}, "other text")  # no points, nothing to pair


def test_generate_refuses_stale_points_before_any_work(monkeypatch):
    from legend_demo.ui import handlers
    from legend_demo.ui.point_editor import editor_value

    image = np.zeros((128, 128), np.float32)

    class Loaded:
        array = image
        dicom_info: dict = {}

    monkeypatch.setattr(handlers, "run_generation", lambda *a, **k: pytest.fail("model time spent on a refusal"))
    value = editor_value(image, [LesionPoint(30, 90)], 0.1, for_text="RLL consolidation")
    out = handlers.on_generate(Loaded(), value, "Left pleural effusion has increased", "", None, "rules", None, 0.1,
                               True, 1.0, 0, 0, 1, False, "", "composite", 1.0, True, request=None)
    assert out[0].startswith("**Not generated:**") and "found for “RLL consolidation”" in out[0]
    assert len(out) == handlers.RESULT_COUNT + 3  # status, viewer, result, tabs, then editor, points, summary


def test_points_note_records_which_text_the_points_were_found_for():
    from legend_demo.ui.handlers import points_note
    from legend_demo.ui.point_editor import editor_value

    pts = [LesionPoint(30, 90, 5, "consolidation, new (right lower lobe)")]
    value = editor_value(np.zeros((128, 128), np.float32), pts, 0.1, found=pts, for_text="new RLL consolidation",
                         origin="grounder: rules")
    note = points_note(value, "new  RLL consolidation")
    assert note == {"count": 1, "by": "grounder: rules", "found_for": "new RLL consolidation", "edited": False,
                    "text": "new RLL consolidation"}
    moved = {**value, "points": [{**value["points"][0], "x": 40.0}]}
    assert points_note(moved, "new RLL consolidation")["edited"] is True


@pytest.mark.parametrize("raw, shown", [
    ("airspace opacity, newly (RLL)", "airspace opacity, new (right lower lobe)"),
    ("effusion, increased (L costophrenic)", "effusion, increased (left costophrenic angle)"),
    ("consolidation, no stated change (R middle)", "consolidation, change not stated (right mid zone)"),
    ("opacities, worse (bilateral, L lower)", "opacities, increased (left lower zone, bilateral)"),
    ("cardiomegaly, improving (cardiac)", "cardiomegaly, decreased (heart)"),
    ("placed by hand", "placed by hand"),
])
def test_grounder_labels_read_as_a_clinician_writes_them(raw, shown):
    from legend_demo.ui.point_labels import clinician_label, split_label

    assert clinician_label(raw) == shown
    assert clinician_label(shown) == shown  # idempotent
    parts = split_label(shown)
    assert parts is None or len(parts) == 3


def test_example_points_match_the_stored_manifest():
    import json

    from legend_demo.ui.examples import SHIPPED, example_files

    manifest = json.loads((SHIPPED / "examples.json").read_text())["examples"]
    shipped = [e for _, e in example_files() if e.path is not None]
    for entry, example in zip(manifest, shipped):
        assert [(p.x, p.y) for p in example.lesion_points()] == [(p["x"], p["y"]) for p in entry["lesion_points"]]
        assert all(p.label.startswith(entry["change"]["type"]) for p in example.lesion_points())
    drawn = [e for _, e in example_files() if e.path is None]
    assert all(len(e.lesion_points()) == 1 for e in drawn)


def test_difference_maps_share_one_symmetric_scale_that_a_small_shift_does_not_saturate():
    from legend_demo.ui.visuals import MIN_DIFFERENCE_SPAN, difference_map, difference_span

    prior = np.full((64, 64), 0.5, np.float32)
    shifted = prior + 0.025  # a 2.5 % global shift
    span = difference_span([(prior, shifted)])
    assert span == MIN_DIFFERENCE_SPAN
    red = difference_map(prior, shifted, span)[0, 0]
    assert red[0] == 255 and red[1] > 150  # pale red, not saturated
    strong = prior.copy()
    strong[:8, :8] = 0.9
    shared = difference_span([(prior, shifted), (prior, strong)])
    assert shared >= 0.4 - 1e-6 and np.array_equal(difference_map(prior, shifted, shared)[0, 0] > 200, [True] * 3)


def test_attention_maps_use_one_peak_across_layers_and_colour_bars_say_the_unit():
    from legend_demo.engines.base import LayerAttention
    from legend_demo.core.overlay import heat_overlay
    from legend_demo.ui.visuals import attention_peak, colorbar

    weak = LayerAttention(0, np.full((4, 4), 1 / 16, np.float32), 0.1, 0.2, None, 0.3)
    sharp_map = np.zeros((4, 4), np.float32)
    sharp_map[1, 1] = 1.0
    sharp = LayerAttention(5, sharp_map, 0.1, 0.2, None, 0.3)
    peak = attention_peak([weak], [sharp])
    assert peak == 1.0
    image = np.zeros((16, 16), np.float32)
    own = heat_overlay(image, weak.heatmap)  # old behaviour: its own max → looks as hot as the sharp layer
    fixed = heat_overlay(image, weak.heatmap, peak=peak)
    assert own.mean() != fixed.mean()
    bar = colorbar(256, 0.0, peak, "share of the image attention per token cell", "jet", percent=True)
    assert bar.shape[1] == 256 and bar.shape[0] > 20 and bar.dtype == np.uint8


def test_metrics_table_has_columns_only_for_what_was_run():
    from legend_demo.engines.base import LayerAttention
    from legend_demo.ui.visuals import metrics_table

    with_points = [LayerAttention(3, np.ones((2, 2)) / 4, 0.1, 0.2, 0.5, 0.3)]
    headers, rows = metrics_table(with_points)
    assert headers == ["layer", "CBI", "EAR", "Attn-IoU", "text share"] and rows == [[3, 0.1, 0.2, 0.5, 0.3]]
    no_points = [LayerAttention(3, np.ones((2, 2)) / 4, 0.1, 0.2, None, 0.3)]
    headers, _ = metrics_table(no_points, no_points)
    assert headers == ["layer", "CBI", "EAR", "text share", "CBI (GBCA off)", "EAR (GBCA off)",
                       "text share (GBCA off)"]


def test_user_mistakes_log_one_line_without_a_traceback():
    import logging

    import gradio as gr

    from legend_demo.ui.errors import friendly

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

    @friendly
    def refuse():
        raise ValueError("sigma_ratio=9 is outside [0.02, 0.3]")

    logger, keep = logging.getLogger("legend_demo.ui"), Keep()
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(gr.Error) as caught:
            refuse()
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    assert [r.levelno for r in keep.records] == [logging.INFO]  # the DEBUG traceback is not emitted at INFO
    assert keep.records[0].exc_info is None and "sigma_ratio=9" in keep.records[0].getMessage()
    assert caught.value.print_exception is False


def test_the_film_viewer_is_reusable_for_a_blinded_page():
    """A reader study can show a prior and two follow-ups without saying which one is synthetic."""
    from legend_demo.ui.viewer import film_entry, film_payload, side_markers, viewer_value, window_presets

    prior01 = np.random.default_rng(0).random((120, 100)).astype(np.float32)
    follow01 = np.clip(prior01 + 0.05, 0, 1)
    prior = film_payload(prior01, max_side=64)
    films = [film_entry("prior", "Prior", prior),
             film_entry("a", "Follow-up A", film_payload(follow01, prior01, prior["key"], max_side=64)),
             film_entry("b", "Follow-up B", film_payload(prior01, max_side=64))]
    assert all(f["band"] == "" and f["synthetic"] is False for f in films)
    value = viewer_value(films, [("prior", "a", "Prior ↔ A"), ("prior", "b", "Prior ↔ B"), ("a", "b", "A ↔ B")],
                         markers=side_markers({}), presets=window_presets(prior01))
    assert max(value["films"][0]["film"]["w"], value["films"][0]["film"]["h"]) == 64
    with pytest.raises(ValueError, match="does not have"):
        viewer_value(films, [("prior", "c", "Prior ↔ C")], markers={}, presets={})


def test_png_films_are_accepted_as_they_are_and_other_bytes_refused():
    import cv2

    from legend_demo.ui.viewer import png_payload

    png = cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes()
    payload = png_payload(png)
    assert payload["png"].startswith("data:image/png;base64,") and len(payload["key"]) == 16
    with pytest.raises(ValueError, match="PNG"):
        png_payload(b"GIF89a....")
