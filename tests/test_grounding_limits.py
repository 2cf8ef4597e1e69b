"""Limits that protect the shared queue: one text limit checked before any work (grounding, API, CLI), a merge
that stays fast for many points, and grounder="vlm" failing at once when no weights are installed."""
from __future__ import annotations

import time

import pytest

from legend_demo.cli import main
from legend_demo.grounding import ground
from legend_demo.grounding.limits import MAX_POINTS, MAX_TEXT_CHARS
from legend_demo.grounding.postprocess import merge_close
from legend_demo.grounding.prompt import MAX_DESCRIPTION_CHARS
from legend_demo.synth.drawing import draw_chest
from legend_demo.grounding.vlm import VlmUnavailableError, forget_models
from legend_demo.core.points import LesionPoint

LONG = "Interval increase in right lower lobe consolidation. " * 800  # ≈ 42,000 characters (the case)
CHEST = draw_chest(320, 384)[0]


def test_one_limit_everywhere():
    assert MAX_DESCRIPTION_CHARS == MAX_TEXT_CHARS  # the VLM prompt uses the same constant


def test_a_long_text_is_refused_fast_before_the_image_is_touched():
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"the limit is {MAX_TEXT_CHARS}"):
        ground("/nowhere/no-such-file.png", LONG)  # the text check comes first: no FileNotFoundError
    assert time.perf_counter() - started < 0.05


def test_text_at_the_limit_is_accepted():
    text = ("New right lower lobe consolidation. " * 100)[:MAX_TEXT_CHARS]
    assert len(text) == MAX_TEXT_CHARS
    assert ground(CHEST, text).points


@pytest.mark.parametrize("argv", [
    ["ground", "--image", "/nowhere/prior.png", "--text", LONG],
    ["generate", "--image", "/nowhere/prior.png", "--text", LONG, "--out", "/nowhere/out"],
])
def test_the_cli_refuses_a_long_text_with_one_line_before_loading(argv, capsys):
    started = time.perf_counter()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - started < 0.5
    assert err.startswith("error:") and err.count("\n") == 1 and f"the limit is {MAX_TEXT_CHARS}" in err


def test_the_api_refuses_a_long_text_before_reading_the_upload():
    import gradio as gr

    from legend_demo.ui.api import make_api
    from legend_demo.ui.config import AppConfig

    api_ground, api_generate = make_api(AppConfig.from_env())
    for call in (lambda: api_ground("/nowhere/prior.png", LONG), lambda: api_generate("/nowhere/prior.png", LONG)):
        started = time.perf_counter()
        with pytest.raises(gr.Error, match=f"the limit is {MAX_TEXT_CHARS}"):
            call()
        assert time.perf_counter() - started < 0.05


def test_dense_text_at_the_limit_grounds_in_bounded_time():
    text = ("New right upper lobe nodule, increased left basilar atelectasis and small right pleural effusion; "
            "no pneumothorax. ")
    text = (text * 40)[:MAX_TEXT_CHARS]
    started = time.perf_counter()
    result = ground(CHEST, text)
    assert time.perf_counter() - started < 2.0
    assert 3 <= len(result.points) <= 6  # the same few sites, merged


def test_many_identical_points_merge_fast_and_exactly():
    points = [LesionPoint(100.0, 100.0, 3, "a")] * 20_000 + [LesionPoint(104.0, 100.0, 5, "b")] * 20_000
    started = time.perf_counter()
    merged = merge_close(points, (1000, 1000))
    assert time.perf_counter() - started < 1.0
    assert len(merged) == 1 and merged[0].x == pytest.approx(102.0) and merged[0].confidence == 5
    assert merged[0].label == "a; b"


def test_too_many_distinct_points_is_a_loud_error_not_a_slow_loop():
    points = [LesionPoint(float(i * 50 % 1000), float(i * 50 // 1000 * 50), 4) for i in range(MAX_POINTS + 1)]
    with pytest.raises(ValueError, match=f"at most {MAX_POINTS}"):
        merge_close(points, (1000, 1000))


def test_vlm_without_weights_fails_at_once_and_downloads_nothing(monkeypatch, tmp_path):
    forget_models()
    monkeypatch.delenv("LEGEND_QWEN_PATH", raising=False)
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path / "empty"))
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # an empty cache: the hub id is absent
    started = time.perf_counter()
    with pytest.raises(VlmUnavailableError, match="not available.*Nothing is downloaded.*'rules'"):
        ground(CHEST, "New RLL opacity.", "vlm")
    assert time.perf_counter() - started < 0.5
    assert not (tmp_path / "hub-cache").exists() or not any((tmp_path / "hub-cache").iterdir())


def test_vlm_weights_are_found_under_the_apps_checkpoints_root(monkeypatch, tmp_path):
    """One resolver: `app.py --checkpoints DIR` (a settings override) is where the VLM grounder looks too."""
    from legend_demo.core import settings
    from legend_demo.grounding.vlm import default_source, vlm_unavailable_reason

    monkeypatch.delenv("LEGEND_QWEN_PATH", raising=False)
    (tmp_path / "qwen2.5-vl-7b-instruct").mkdir()
    (tmp_path / "qwen2.5-vl-7b-instruct" / "config.json").write_text("{}")
    settings.override(LEGEND_CHECKPOINTS=str(tmp_path))
    try:
        assert vlm_unavailable_reason() == "" and default_source() == str(tmp_path / "qwen2.5-vl-7b-instruct")
    finally:
        settings.clear_overrides()
