"""Samplers (inversion round trip) and what only the dual-path engine does, on tiny random FLUX (the contract every
engine passes — zero bias = stock, source row, keep region, cancel, provenance, refusals: test_engine_contract.py)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from legend_demo import LesionPoint
from legend_demo.engines.base import GenerationRequest
from legend_demo.method.sampling import denoise, flux_sigmas, invert
from legend_demo.method.strength import S_MAX, StrengthMLP


def chest(h=80, w=72):
    y, x = np.mgrid[0:h, 0:w]
    return (0.25 + 0.6 * np.exp(-((x - w / 2) ** 2 / 300 + (y - h / 2) ** 2 / 500))).astype(np.float32)


def request(**kw):
    args = dict(image=chest(), progression_text="new right lower lobe consolidation", points=[LesionPoint(20, 60)], steps=4)
    return GenerationRequest(**(args | kw))


def test_euler_is_exact_on_a_straight_flow():
    x0, eps = torch.randn(1, 5, 3), torch.randn(1, 5, 3)
    velocity = lambda x, sigma: eps - x0  # noqa: E731  the true velocity of x_σ = (1−σ)x0 + σε
    sigmas = [1.0, 0.7, 0.3, 0.0]
    torch.testing.assert_close(invert(velocity, x0, sigmas), eps)
    torch.testing.assert_close(denoise(velocity, eps, sigmas), x0)


def test_sigmas_must_be_monotone():
    with pytest.raises(ValueError, match="strictly descending"):
        denoise(lambda x, s: x, torch.zeros(1), [0.5, 0.7, 0.0])
    with pytest.raises(ValueError, match="strictly descending"):  # invert takes the sampling sigmas, descending
        invert(lambda x, s: x, torch.zeros(1), [0.0, 1.0])


def test_inversion_then_regeneration_reconstructs_the_latent(tiny_engine):
    """Stated tolerance: relative L2 error < 2 % at 50 steps on the tiny random model (first-order inversion)."""
    editor = tiny_engine.editor
    x0 = editor.codec.encode(torch.from_numpy(chest(64, 64))[None], "cpu", torch.float32)  # (1, N, C)
    embeds, pooled = editor.encode_text(["a frontal chest radiograph"])
    velocity = lambda x, sigma: editor.velocity(x, torch.tensor([sigma]), embeds, pooled)  # noqa: E731
    errors = {}
    for steps in (10, 50):
        sigmas = flux_sigmas(steps, x0.shape[1], editor.scheduler_config)
        with torch.no_grad():
            back = denoise(velocity, invert(velocity, x0, sigmas), sigmas)
        errors[steps] = ((back - x0).norm() / x0.norm()).item()
    assert errors[50] < 0.02, errors
    assert errors[50] < errors[10], errors  # the error shrinks with the step size


def test_progress_names_both_phases_and_provenance_has_the_strength_per_step(tiny_engine):
    """What only the diffusion engines report (the rest of the result's shape: tests/test_engine_contract.py)."""
    seen = []
    result = tiny_engine.generate(request(bias_strength=2.0, seed=5), progress=lambda *a: seen.append(a))
    assert [layer.layer for layer in result.layers] == list(tiny_engine.default_vital_layers)
    assert ("invert", 4, 4) in seen and ("denoise", 4, 4) in seen
    params = result.report()["provenance"]["parameters"]
    assert params["strength_per_step"] == [2.0] * 4 and params["steps"] == 4


def test_gbca_raises_attention_on_the_lesion(tiny_engine):
    on = tiny_engine.generate(request(bias_strength=4.0))
    off = tiny_engine.generate(request(bias_strength=0.0))
    for a, b in zip(on.layers, off.layers):
        assert a.attn_iou > b.attn_iou, (a.layer, a.attn_iou, b.attn_iou)


def test_learned_strength_is_used_when_no_override(tiny_engine):
    result = tiny_engine.generate(request(bias_strength=None))
    assert result.provenance.parameters["strength_per_step"] == pytest.approx([0.01] * 4)


def test_seed_matters_only_with_noise_mix(tiny_engine):
    a = tiny_engine.generate(request(seed=1))
    b = tiny_engine.generate(request(seed=2))
    np.testing.assert_allclose(a.followup, b.followup, atol=1e-6)
    c = tiny_engine.generate(request(seed=1, noise_mix=0.3))
    d = tiny_engine.generate(request(seed=2, noise_mix=0.3))
    assert np.abs(c.followup - d.followup).max() > 1e-3


def test_points_map_from_original_pixels_through_the_frame(tiny_engine):
    result = tiny_engine.generate(request(points=[LesionPoint(71, 0)]))  # 72×80 padded to 80² then 64²
    assert result.frame.original_size == (72, 80)
    x, y = result.frame.to_model(71, 0)
    assert (x, y) == pytest.approx(((71 + 4) * 64 / 80, 0.0))
    assert result.prior_map.argmax() == np.ravel_multi_index((0, int(x // 4)), (16, 16))


def test_inversion_is_reused_for_the_same_image_and_source_prompt(tiny_engine):
    def inversion_steps(**kw):
        seen = []
        result = tiny_engine.generate(request(image=chest(70, 66), **kw), progress=lambda *a: seen.append(a))
        return result, [step for phase, step, _ in seen if phase == "invert"]

    first, first_steps = inversion_steps(source_text="a source prompt seen once", bias_strength=2.0)
    again, again_steps = inversion_steps(source_text="a source prompt seen once", bias_strength=0.0, seed=3)
    np.testing.assert_allclose(first.source_reconstruction, again.source_reconstruction, atol=1e-6)
    assert first_steps == [1, 2, 3, 4] and again_steps == [4]  # a cache hit: no inversion step ran
    _, other_steps = inversion_steps(source_text="a different source prompt")
    assert other_steps == [1, 2, 3, 4]


def test_strength_mlp_starts_at_0_01_is_bounded_and_round_trips(tmp_path):
    mlp = StrengthMLP()
    tau = torch.linspace(0, 1, 5)
    torch.testing.assert_close(mlp(tau), torch.full((5,), 0.01))
    with torch.no_grad():
        mlp.fc2.bias.fill_(1e4)
    assert (mlp(tau) <= S_MAX).all()
    path = mlp.save(tmp_path / "gbca.safetensors")
    torch.testing.assert_close(StrengthMLP.load(path)(tau), mlp(tau))
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        StrengthMLP.load(tmp_path / "bad.safetensors")


@pytest.mark.slow  # a subprocess CLI run
def test_cli_generate_writes_outputs_and_rejects_bad_input(tmp_path):
    from PIL import Image

    Image.fromarray((chest() * 255).astype(np.uint8)).save(tmp_path / "prior.png")
    cmd = [sys.executable, "-m", "legend_demo", "generate", "--image", str(tmp_path / "prior.png"),
           "--text", "new left lower lobe consolidation", "--engine", "tiny-random", "--steps", "2",
           "--points", '[{"x": 50, "y": 60, "confidence": 5}]', "--out", str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["engine"] == "tiny-random" and report["points"][0]["x"] == 50
    assert {"layer", "cbi", "ear", "attn_iou"} <= set(report["layers"][0])
    assert {"followup.png", "prior.png", "attention_layer00.png", "model_view.png"} <= set(report["files"])
    with Image.open(tmp_path / "out" / "followup.png") as film:  # the film: the prior's 72 columns, band below
        assert film.size[0] == 72 and film.size[1] > 80 and "SYNTHETIC" in film.text["Description"]
    assert report["output"]["mode"] == "composite" and report["output"]["scale"] == 1.0
    bad = subprocess.run(cmd[:5] + [str(tmp_path / "missing.png")] + cmd[6:], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
    bad_points = subprocess.run(cmd[:-4] + ["--points", "[{\"x\": 1}]", "--out", str(tmp_path / "o2")], capture_output=True, text=True, timeout=300)
    assert bad_points.returncode == 2 and "lacks y" in bad_points.stderr and "Traceback" not in bad_points.stderr
