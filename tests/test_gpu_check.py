"""benchmarks/gpu_check.py: in-memory NF4 follows the bitsandbytes loaders' rules, and `--smoke` runs every section's
code path on tiny configs on the CPU and writes the keys the full-size check writes (so the device check cannot rot)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

bnb = pytest.importorskip("bitsandbytes")


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(64, 64)
        self.wo = torch.nn.Linear(64, 64, bias=False)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([Block(), Block()])
        self.lm_head = torch.nn.Linear(64, 10)


def test_to_nf4_quantizes_every_linear_the_rule_does_not_keep_and_stays_close():
    torch.manual_seed(0)
    net = Net().to(torch.bfloat16).eval()
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    with torch.no_grad():
        before = net.blocks[0].q(x).float()
    counts = gpu_check.to_nf4(net, torch.bfloat16, lambda name: gpu_check.transformers_skip(name, ["wo", "lm_head"]))
    assert counts == {"quantized": 2, "kept": 3}
    assert isinstance(net.blocks[1].q, bnb.nn.Linear4bit) and net.blocks[1].q.weight.quant_type == "nf4"
    assert type(net.blocks[0].wo) is torch.nn.Linear and type(net.lm_head) is torch.nn.Linear
    with torch.no_grad():
        after = net.blocks[0].q(x).float()
    assert 0 < gpu_check.relative_error(after, before) < 0.15  # 4-bit weights: close, not equal


def test_diffusers_rule_keeps_named_modules_and_their_children_only():
    assert gpu_check.diffusers_skip("proj_out", ["proj_out"])
    assert gpu_check.diffusers_skip("norm_out.linear", ["norm_out"])
    assert not gpu_check.diffusers_skip("transformer_blocks.0.attn.to_q", ["proj_out"])


def test_the_table_marks_goals_and_failures():
    report = {"meta": {"smoke": False, "seconds": 1.0, "created_utc": "now", "env": {"gpu": "GPU", "python": "3.12"}},
              "flux": {"status": "ok", "variants": {"nf4": {
                  "invariants": {"zero_bias_equals_stock": {"relative_error": 0.5, "pass": False}, "all_pass": False,
                                 "tolerance": 0.02},
                  "followups": {"256": {"steps": 28, "configs": {"gbca_capture": {
                      "s_per_followup": {"median": 2.5}, "peak_gb": 20.0}}}}}}},
              "qwen": {"status": "failed", "errors": ["section: RuntimeError: boom"]}, "emu3": {"status": "not run"}}
    table = gpu_check.render_table(report)
    assert "FAIL (max rel. err 5.0e-01)" in table
    assert "| flux | nf4 256²: s per follow-up (GBCA + capture, 28 steps) | 2.50 s | ≤ 3 s ✅ |" in table
    assert "| flux | nf4 256²: peak GPU memory | 20.00 GB | ≤ 18 GB ❌ |" in table
    assert "qwen: failed" in table and "error: section: RuntimeError: boom" in table and "RANDOM WEIGHTS" in table


@pytest.mark.slow
def test_smoke_runs_every_section_on_the_cpu_and_writes_the_full_checks_keys(tmp_path):
    out = tmp_path / "check"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report) == {"meta", "flux", "qwen", "emu3"} and report["meta"]["smoke"] is True
    for name in ("flux", "qwen", "emu3"):
        assert report[name]["status"] == "ok", (name, report[name].get("errors"), report[name].get("skipped"))
        assert (out / f"{name}.json").is_file() and (out / f"{name}.log").is_file()

    flux = report["flux"]
    for variant in ("nf4", "bf16"):
        data = flux["variants"][variant]
        assert data["invariants"]["all_pass"], data["invariants"]
        assert set(data["forward_s"]) == {"diffusers processors", "GBCA inert (s = 0)", "GBCA (bias + injection)",
                                          "GBCA + capture"}
        for side in ("64", "128"):
            assert set(data["followups"][side]["configs"]) >= {"stock", "gbca", "gbca_capture", "capture_overhead"}
    quantized = flux["variants"]["nf4"]["quantized"]
    assert quantized["transformer"]["quantized"] > 0 and quantized["text_encoder_2"]["kept"] > 0  # T5's "wo" kept
    assert flux["loader"]["ok"]

    qwen = report["qwen"]
    assert qwen["quantized"]["quantized"] > 0 and qwen["quantized"]["kept_patterns"] == ["lm_head"]
    for name in ("configured", "typical"):
        cold = qwen["ground"][name]["cold"]
        assert cold["grounder"] == "rules" and cold["lm_forward_calls"] == cold["max_new_tokens"]  # garbage → fallback
    assert qwen["loader"]["ok"]

    emu3 = report["emu3"]
    assert emu3["quantized"]["linear4bit_in_vq"] == 0  # the VQ tokenizer stays unquantized, as the engine loads it
    assert {"gbca_on", "gbca_off", "ratio_on_off"} <= set(emu3["followups"]) and emu3["loader"]["ok"]
    table = (out / "gpu_check.md").read_text()
    assert "RANDOM WEIGHTS" in table and "| emu3 | sampling time GBCA on / off |" in table
