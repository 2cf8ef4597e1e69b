"""The app builds without launching, and its pure helpers behave (no model, no server)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from legend_demo.core.points import LesionPoint
from legend_demo.ui.config import AppConfig

pytestmark = pytest.mark.slow  # builds the whole Gradio page: the slow tier (python -m pytest -m slow)


@pytest.fixture(scope="module")
def demo():
    from legend_demo.ui.app_ui import create_demo

    return create_demo(AppConfig.from_env())


def test_create_demo_builds_without_launching(demo):
    import gradio as gr

    assert isinstance(demo, gr.Blocks)
    assert not getattr(demo, "is_running", False)


def test_named_api_endpoints_exist_and_ui_callbacks_stay_private(demo):
    names = [d.api_name for d in demo.fns.values() if d.api_visibility == "public"]
    assert sorted(names) == ["generate", "ground"]


def test_generate_runs_one_job_at_a_time(demo):
    gpu_jobs = [d for d in demo.fns.values() if d.concurrency_id == "gpu"]
    assert len(gpu_jobs) >= 3  # UI generate, /ground, /generate
    assert all(d.concurrency_limit == 1 for d in gpu_jobs)


def test_no_image_component_hands_out_unlabelled_downloads(demo):
    """Gradio's own download buttons would serve webp copies without the band or metadata (issue 9 §2)."""
    import gradio as gr

    pictures = [b for b in demo.blocks.values() if isinstance(b, (gr.Image, gr.ImageSlider, gr.Gallery))]
    assert len(pictures) >= 7
    for block in pictures:
        buttons = [b for b in (block.buttons or []) if isinstance(b, str)]
        assert not {"download", "download_all", "share"} & set(buttons), (block.elem_id, buttons)


def test_page_shows_research_notice_and_synthetic_labels(demo):
    config = str(demo.config)
    assert "Research use only" in config
    assert "SYNTHETIC" in config


def test_without_engines_the_page_says_why(monkeypatch):
    from legend_demo.engines.registry import EngineInfo
    from legend_demo.ui import app_ui

    monkeypatch.setattr(app_ui, "available_engines", lambda: [EngineInfo("x", "X", False, "needs a GPU")])
    choices, default, notes = app_ui.engine_choices()
    assert choices == [] and default is None
    assert "No generation engine can run here" in notes and "needs a GPU" in notes


def test_prior_overlay_follows_points_and_sigma_through_the_frame():
    from legend_demo.ui.point_editor import prior_overlay

    size = (300, 600)  # W, H: padded to a square
    point = [LesionPoint(75, 450)]
    narrow = prior_overlay(point, size, 0.05)
    wide = prior_overlay(point, size, 0.25)
    h, w = narrow.shape
    assert (w, h) == (128, 256)  # display aspect of the original image
    peak_y, peak_x = np.unravel_index(np.argmax(narrow), narrow.shape)
    assert abs(peak_x / w - 0.25) < 0.1 and abs(peak_y / h - 0.75) < 0.1
    assert wide.sum() > 2 * narrow.sum()
    assert prior_overlay([], size, 0.1).max() == 0


def test_editor_points_are_in_original_pixels_and_outside_ones_are_refused():
    from legend_demo.ui.point_editor import editor_points, editor_value

    value = editor_value(np.zeros((500, 400), np.float32), [LesionPoint(10, 20, 4)], 0.1)
    assert (value["width"], value["height"]) == (400, 500)
    assert editor_points(value) == [LesionPoint(10, 20, 4, "")]
    value["points"].append({"x": 999, "y": -5, "confidence": 5})
    with pytest.raises(ValueError, match="outside"):  # as /generate does; never moved to the border (issue 12 §15)
        editor_points(value)


def test_upload_checks_type_and_size_before_decoding(tmp_path):
    from legend_demo.core.errors import ImageInputError
    from legend_demo.ui.uploads import load_upload

    config = AppConfig(max_upload_mb=0.001)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(ImageInputError, match="not supported"):
        load_upload(str(text), config)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"0" * 5000)
    with pytest.raises(ImageInputError, match="limit is"):
        load_upload({"path": str(big)}, config)
    with pytest.raises(ImageInputError, match="no image"):
        load_upload(None, config)


def test_config_flags_win_over_environment(tmp_path, monkeypatch):
    from legend_demo.core import settings
    from legend_demo.core.checkpoints import checkpoint_path

    for name, value in {"LEGEND_CHECKPOINTS": "/env/ckpt", "LEGEND_ENGINE": "embedded",
                        "LEGEND_FLUX_PATH": "/models/flux"}.items():
        monkeypatch.setenv(name, value)
    config = AppConfig.from_env(checkpoints_root=str(tmp_path), engine=None)
    assert config.checkpoints_root == tmp_path and config.engine == "embedded"
    config.apply()  # the flag becomes the process's root for every resolver; os.environ is left alone
    try:
        assert str(config.checkpoint_dir("flux")) == "/models/flux"
        assert config.checkpoint_dir("stage1_lora") == tmp_path / "legend-stage1-lora"
        (tmp_path / "legend-stage1-lora").mkdir()
        assert checkpoint_path("stage1_lora") == str(tmp_path / "legend-stage1-lora")
        assert os.environ["LEGEND_CHECKPOINTS"] == "/env/ckpt"
    finally:
        settings.clear_overrides()
    monkeypatch.setenv("LEGEND_MAX_UPLOAD_MB", "-3")
    with pytest.raises(ValueError, match="LEGEND_MAX_UPLOAD_MB"):
        AppConfig.from_env()


def test_api_points_accept_list_dict_or_json_text():
    from legend_demo.core.points import points_json as parse_points

    assert parse_points(None) is None and parse_points("  ") is None
    assert parse_points('[{"x": 1, "y": 2}]') == [{"x": 1, "y": 2}]
    assert parse_points({"points": []}) == []
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_points("[{")


def test_errors_become_messages_not_tracebacks():
    import gradio as gr

    from legend_demo.core.errors import ImageInputError
    from legend_demo.ui.errors import friendly

    @friendly
    def broken():
        raise ImageInputError("the file is empty")

    with pytest.raises(gr.Error, match="Image problem: the file is empty"):
        broken()


def test_examples_are_synthetic_drawings_with_findings():
    from legend_demo.synth.drawing import draw_chest
    from legend_demo.ui.examples import EXAMPLES, HEIGHT, WIDTH

    normal = draw_chest(WIDTH, HEIGHT, 0)[0]
    opacity = draw_chest(WIDTH, HEIGHT, 0, finding="opacity-right-lower")[0]
    assert normal.dtype == np.float32 and 0 <= normal.min() and normal.max() <= 1
    diff = np.abs(opacity - normal)
    ys, xs = np.nonzero(diff > 0.05)
    assert xs.mean() < normal.shape[1] / 2  # patient's right lung = image left
    assert all("SYNTHETIC" in e.caption for e in EXAMPLES)


def test_k_samples_give_each_followup_their_mean_and_a_std_map():
    from legend_demo.ui.generation import GenerationBundle
    from legend_demo.ui.result_tabs import sample_gallery

    from legend_demo.method.composite import Film

    class Fake:  # a result whose follow-up film is flat at `value`
        def __init__(self, value):
            self.film = Film(np.full((300, 400), value, np.float32), None, "composite")

    bundle = GenerationBundle(samples=[Fake(0.2), Fake(0.6)], seeds=[3, 4])
    items = sample_gallery(bundle)
    captions = [c for _, c in items]
    assert captions[:2] == ["SYNTHETIC · seed 3", "SYNTHETIC · seed 4"]
    assert "mean of 2" in captions[2] and "std" in captions[3]
    assert items[2][0][0, 0, 0] == round(0.4 * 255)  # the mean film, at the film's top-left pixel
    for picture, _ in items:  # every picture keeps the film's width and carries a band below the film rows
        assert picture.shape[1] == 400 and picture.shape[0] > 300


def test_create_demo_never_embeds_a_reader_study(tmp_path):
    from legend_demo.ui.app_ui import create_demo

    with pytest.raises(ValueError, match="--study"):  # readers must see only the study (issue 12 §8): app.py --study
        create_demo(study_db=tmp_path / "study.db")


def test_shipped_examples_are_synthetic_test_split_renders():
    import json

    from legend_demo.core.image_io import load_image
    from legend_demo.ui.examples import SHIPPED, shipped_examples

    manifest = json.loads((SHIPPED / "examples.json").read_text())
    assert manifest["synthetic"] is True and manifest["split"] == "test"
    examples = shipped_examples()
    assert len(examples) == len(manifest["examples"]) >= 5
    for example in examples:
        assert "SYNTHETIC" in example.caption and "synthetic" in Path(example.path).name
        assert load_image(example.path).size == (256, 256)


def test_k_seeds_really_differ_and_the_gbca_off_twin_shares_the_first_seed(tiny_engine, monkeypatch):
    from dataclasses import replace

    from legend_demo.engines.base import GenerationRequest
    from legend_demo.core.points import LesionPoint
    from legend_demo.ui import generation

    monkeypatch.setattr(generation, "load_engine", lambda name=None: tiny_engine)
    image = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    request = GenerationRequest(image=image, progression_text="new right upper lobe nodule", points=[LesionPoint(20, 20)],
                                steps=2, seed=5, bias_strength=3.0)
    click = generation.GenerateClick(request, num_samples=2, compare_off=True)
    requests = click.requests()
    assert [r.seed for r in requests] == [5, 6, 5] and requests[-1].bias_strength == 0.0
    assert all(r.noise_mix == generation.SAMPLE_NOISE_MIX for r in requests)
    bundle = generation.run_generation(click)
    assert np.abs(bundle.samples[0].followup - bundle.samples[1].followup).max() > 1e-3
    assert generation.GenerateClick(replace(request, points=[])).noise_mix == 0.0


def test_viewers_load_nothing_from_the_network_and_offer_no_downloads(demo):
    """The film viewer's script and styles are served with the page (no CDN) and it has no download buttons."""
    from legend_demo.ui.point_editor import PointEditor
    from legend_demo.ui.viewer import STATIC, FilmViewer

    viewers = [b for b in demo.blocks.values() if isinstance(b, (PointEditor, FilmViewer))]
    assert {type(v) for v in viewers} == {PointEditor, FilmViewer}
    for viewer in viewers:
        assert viewer.head is None and not viewer.buttons
        assert "http://" not in viewer.js_on_load and "https://" not in viewer.js_on_load
        assert "contextmenu" in viewer.js_on_load  # the canvas's "Save image as" is blocked (browser test checks it)
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "import(" not in text, path.name


def test_controls_are_disabled_when_they_would_be_ignored(demo):
    import gradio as gr

    from legend_demo.ui.app_ui import region_control, steps_control

    bias = next(b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.elem_id == "bias")
    assert bias.interactive is False  # "Use the trained s(τ)" starts ticked, so the fixed strength is ignored
    assert region_control("model-view", False).interactive is False
    assert region_control("model-view", True).interactive is True
    assert region_control("composite", False).interactive is True
    assert steps_control("legend-ar").interactive is False
    assert "default" in steps_control("tiny-random").label


def test_page_wording_is_for_clinicians(demo):
    config = str(demo.config)
    assert "Points received by Python" not in config
    assert "0 = engine default)" not in config  # the steps control says which default
    from legend_demo.ui.app_ui import grounder_choices
    from legend_demo.ui.config import AppConfig

    _, note = grounder_choices(AppConfig(checkpoints_root=Path("/srv/secret/ckpt")))
    assert "/srv" not in note and "secret" not in note
