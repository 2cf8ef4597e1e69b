"""`python -m legend_demo ground`: one case and a JSONL batch, JSON on stdout, exit code 2 on bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from legend_demo.cli import main
from legend_demo.synth.drawing import draw_chest


@pytest.fixture()
def chest_png(tmp_path):
    chest, right, left = draw_chest(360, 420)
    path = tmp_path / "prior.png"
    Image.fromarray((chest * 255).astype(np.uint8)).save(path)
    return path, right, left


def test_one_case_prints_points_size_grounder_and_warnings(chest_png, capsys):
    path, right, left = chest_png
    code = main(["ground", "--image", str(path), "--text", "New right lower lobe consolidation. No effusion."])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {"points", "image_size", "grounder", "warnings", "lung_fields", "orientation"}
    assert out["image_size"] == [360, 420] and out["grounder"] == "rules"
    (point,) = out["points"]
    assert right.contains(point["x"], point["y"])
    assert isinstance(point["x"], int) and point["confidence"] == 5 and "RLL" in point["label"]


def test_batch_prints_one_json_object_per_line_and_reports_bad_lines(chest_png, tmp_path, capsys):
    path, right, left = chest_png
    batch = tmp_path / "cases.jsonl"
    batch.write_text("\n".join([
        json.dumps({"image": path.name, "text": "Increased left pleural effusion."}),
        json.dumps({"image": str(path), "text": "No change."}),
        "not json",
        json.dumps({"image": "missing.png", "text": "New RUL opacity."}),
    ]) + "\n")
    code = main(["ground", "--jsonl", str(batch)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(lines) == 4
    assert lines[0]["points"][0]["x"] > 180 and left.contains(lines[0]["points"][0]["x"], lines[0]["points"][0]["y"])
    assert lines[1]["points"] == []
    assert lines[2]["line"] == 3 and "not JSON" in lines[2]["error"]
    assert lines[3]["line"] == 4 and "error" in lines[3]


def test_vlm_without_weights_fails_at_once_with_one_clear_line(chest_png, capsys, monkeypatch, tmp_path):
    # issue 11: "vlm" without weights used to be accepted and retried the hub for 47 s while holding the queue
    import time

    from legend_demo.grounding.vlm import forget_models

    forget_models()
    monkeypatch.setenv("LEGEND_QWEN_PATH", str(tmp_path / "no-weights-here"))
    path, _, _ = chest_png
    started = time.perf_counter()
    code = main(["ground", "--image", str(path), "--text", "New RLL opacity.", "--grounder", "vlm"])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 1.0
    assert err.startswith("error:") and err.count("\n") == 1
    assert "VLM grounder is not available" in err and "rules" in err
    assert str(tmp_path) not in err  # no server path in the message


@pytest.mark.parametrize("argv", [
    ["ground", "--image", "nowhere.png", "--text", "new opacity"],
    ["ground", "--text", "new opacity"],
    ["ground", "--jsonl", "nowhere.jsonl"],
])
def test_bad_input_exits_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
