"""`evaluate --metrics …` end to end (issue 21): the thesis's columns, CSV/JSON, clear lines for missing weights,
CLIP-T on a tiny random CLIP, and a 2-process torchrun run that equals the single-process one."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from legend_demo.cli import main

from test_evaluation import tiny_data  # noqa: F401 - tiny_data: the shared fixture

REPO = Path(__file__).resolve().parent.parent
THESIS_KEYS = ("fid", "kid", "ms_ssim", "psnr", "auc", "f1", "clip_t")


def _args(data: Path, *extra: str) -> list[str]:
    return ["evaluate", "--data", str(data), "--engine", "tiny-random", "--steps", "2", *extra]


def test_missing_weights_is_one_clear_line_before_any_generation(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEGEND_XRV_PATH", str(tmp_path / "no-weights"))
    assert main(_args(tiny_data, "--metrics", "all", "--engine", "no-such-engine")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "densenet121-res224-all" in err and "Traceback" not in err
    assert str(tmp_path) not in err


@pytest.mark.parametrize("args, message", [(["--random-feature-weights"], "--random-feature-weights needs --metrics"),
                                           (["--metrics", "fid,blur"], "unknown blur")])
def test_metric_flags_are_checked(tiny_data, capsys, args, message):
    assert main(_args(tiny_data, *args)) == 2
    assert message in capsys.readouterr().err


def _tiny_clip(folder: Path) -> None:
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    from legend_demo.embedded.model import minilm_path

    text = dict(vocab_size=30522, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=64, projection_dim=8, eos_token_id=102, bos_token_id=101, pad_token_id=0)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8, projection_dim=8)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)


def test_clip_t_on_a_tiny_transformers_clip(tmp_path):
    from legend_demo.evaluation.clip_score import NOT_INSTALLED, load_clip

    assert load_clip(tmp_path / "absent") == (None, NOT_INSTALLED)
    _tiny_clip(tmp_path / "clip")
    scorer, reason = load_clip(tmp_path / "clip")
    assert reason is None and "transformers" in scorer.name
    images = [np.full((40, 48), 0.3, np.float32), np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)]
    first = scorer.scores(images, ["new effusion", "right lower lobe consolidation has resolved"])
    assert len(first) == 2 and all(-100.0 <= v <= 100.0 for v in first)
    assert scorer.scores(images, ["new effusion", "right lower lobe consolidation has resolved"]) == first
    assert scorer.scores(images[:1], ["new effusion"])[0] == pytest.approx(first[0], abs=1e-4)


@pytest.mark.slow  # a whole evaluation run with the full-size random DenseNet-121
def test_evaluate_metrics_all_writes_the_thesis_columns(tiny_data, tmp_path, monkeypatch, capsys):
    _tiny_clip(tmp_path / "clip")
    monkeypatch.setenv("LEGEND_CLIP_PATH", str(tmp_path / "clip"))
    out = tmp_path / "eval.json"
    assert main(_args(tiny_data, "--metrics", "all", "--random-feature-weights", "--out", str(out))) == 0
    printed = capsys.readouterr().out
    assert "Thesis protocol" in printed and "RANDOM feature weights" in printed
    for header in ("FID↓ (RANDOM-weight XRV-DenseNet121 features)", "CLIP-T↑", "MS-SSIM↑ (256²)", "PSNR↑",
                   "AUC↑ (RANDOM-weight XRV-DenseNet121)", "F1↑"):
        assert header in printed
    report = json.loads(out.read_text())
    per_config = report["thesis"]["per_config"]
    assert list(per_config) == ["full", "gbca_off", "no_inject", "data", "prior"]
    for key in ("full", "gbca_off", "no_inject", "prior"):
        for metric in THESIS_KEYS:
            assert isinstance(per_config[key][metric], float), (key, metric)
    assert per_config["data"]["ms_ssim"] == pytest.approx(1.0) and per_config["data"]["fid"] is None
    assert report["thesis"]["networks"]["random_weights"] is True
    with (tmp_path / "eval.cases.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 5 and {r["config"] for r in rows} == set(per_config)
    assert {r["label"] for r in rows} == {"Consolidation", "Pneumothorax", "Nodule"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two torchrun workers (gloo) and one plain process, each a whole evaluation
def test_two_process_sharded_run_equals_one_process(tiny_data, tmp_path):
    env = {**os.environ, "LEGEND_ENABLE_TEST_ENGINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    common = _args(tiny_data, "--metrics", "ms_ssim,psnr,fid,kid,auc,f1", "--random-feature-weights")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    single = subprocess.run([sys.executable, "-m", "legend_demo", *common, "--out", str(one)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(_free_port()), "-m", "legend_demo"]
    sharded = subprocess.run([*torchrun, *common, "--out", str(two)], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=900)
    assert sharded.returncode == 0, sharded.stderr[-2000:]
    assert sharded.stdout.count("## Evaluation") == 1  # only rank 0 prints the report
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["processes"], b["processes"]) == (1, 2)
    assert a["aggregates"] == b["aggregates"] and a["checks"] == b["checks"]
    assert a["thesis"]["per_config"] == b["thesis"]["per_config"] and a["thesis"]["rows"] == b["thesis"]["rows"]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(a["rows"]) == drop(b["rows"])
    shards = sorted((tmp_path / "two.json.shards").iterdir())
    assert [p.name for p in shards] == ["rank-00000-of-00002.json", "rank-00001-of-00002.json"]
    assert [json.loads(p.read_text())["case_indices"] for p in shards] == [[0, 2], [1]]
