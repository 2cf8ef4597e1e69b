"""`python -m legend_demo profile --engine legend-ar --pairs DIR` (in process, tiny random Emu3 on CPU)."""
import csv
import json

import pytest

from legend_demo.ar.tiny import TINY_AR_SIDE, save_tiny_emu3, write_tiny_pairs
from legend_demo.cli import main
from legend_demo.engines import registry

pytestmark = pytest.mark.slow  # runs the AR profiling pass and its CLI: the slow tier (python -m pytest -m slow)


@pytest.fixture()
def tiny_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGEND_EMU3_PATH", str(save_tiny_emu3(tmp_path / "emu3", seed=3)))
    monkeypatch.setenv("LEGEND_ALLOW_CPU_EMU3", "1")
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path / "none"))
    yield
    registry.clear_cache()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_tiny_pairs(tmp_path_factory.mktemp("profile") / "pairs", count=3, side=32, val=1)


def test_profile_writes_table_json_and_plots(tiny_checkpoint, pairs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["profile", "--engine", "legend-ar", "--pairs", str(pairs), "--out", str(out), "--side", str(TINY_AR_SIDE),
                 "--bias-strength", "3", "--layers", "0,1,2,3"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pairs"] == 3 and summary["layers"] == 4
    rows = list(csv.DictReader(open(out / "profile.csv")))
    assert [(r["layer"], r["gbca"]) for r in rows] == [(str(l), g) for g in ("off", "on") for l in range(4)]
    record = json.loads((out / "profile.json").read_text())
    assert record["gbca_layers"] == [1, 2] and record["strength_per_layer"] == {"1": 3.0, "2": 3.0}
    assert record["token_grid"] == [8, 8]
    for name in ("profile.png", "maps.png"):
        assert (out / name).stat().st_size > 5000


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0,9"], "profiled layers [9]"),
    (["--gbca-layers", "x"], "--gbca-layers must be"),
    (["--sigma-ratio", "0.9"], "--sigma-ratio"),
    (["--bias-strength", "-1"], "bias_strength"),
    (["--side", "15"], "factor"),
    (["--split", "test"], "no pairs with split='test'"),
])
def test_profile_bad_input_exits_2_with_one_line(tiny_checkpoint, pairs, tmp_path, capsys, argv, message):
    code = main(["profile", "--pairs", str(pairs), "--out", str(tmp_path / "o"), "--side", "16", *argv])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("Loading weights")]
    assert code == 2 and len(err) == 1 and message in err[0], err  # one line (transformers' load bar aside)


def test_profile_without_a_checkpoint_says_why(pairs, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LEGEND_EMU3_PATH", raising=False)
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path))
    code = main(["profile", "--engine", "legend-ar", "--pairs", str(pairs), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "no Emu3-Gen checkpoint: put it in checkpoints/emu3-gen/ or set LEGEND_EMU3_PATH" in err[0]
