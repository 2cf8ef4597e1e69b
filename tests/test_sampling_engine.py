"""Samplers (inversion round trip, no source lag) and the dual-path engine end to end on tiny random FLUX."""
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from legend_demo import LesionPoint
from legend_demo.engines.base import GenerationCancelled, GenerationRequest
from legend_demo.sampling import denoise, flux_sigmas, invert
from legend_demo.strength import S_MAX, StrengthMLP


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


def test_source_row_is_never_lagged_or_influenced_by_the_edit(tiny_engine):
    """The dual path's source row equals a plain single-row source-only inversion + denoise (no processors), and
    does not depend on the edit row's text, bias or injection."""
    full = tiny_engine.generate(request(bias_strength=3.0))
    off = tiny_engine.generate(request(progression_text="completely different text", bias_strength=0.0, inject=False))
    np.testing.assert_allclose(full.source_reconstruction, off.source_reconstruction, atol=1e-5)
    assert np.abs(full.followup - off.followup).max() > 1e-3
    editor = tiny_engine.editor
    x0 = editor.codec.encode(torch.from_numpy(full.prior_image)[None], "cpu", torch.float32)  # (1, N, C)
    embeds, pooled = editor.encode_text([request().source_text])
    velocity = lambda x, sigma: editor.velocity(x, torch.tensor([sigma]), embeds, pooled)  # noqa: E731
    sigmas = flux_sigmas(4, x0.shape[1], editor.scheduler_config)
    with torch.no_grad():
        alone = editor.codec.decode(denoise(velocity, invert(velocity, x0, sigmas), sigmas), editor.model_side)[0]
    np.testing.assert_allclose(full.source_reconstruction, alone, atol=1e-5)


def test_equal_prompts_full_injection_and_no_bias_give_the_source(tiny_engine):
    text = "a frontal chest radiograph"
    result = tiny_engine.generate(request(progression_text=text, source_text=text, bias_strength=0.0))
    np.testing.assert_allclose(result.followup, result.source_reconstruction, atol=1e-5)


def test_generate_returns_maps_metrics_and_provenance(tiny_engine):
    seen = []
    result = tiny_engine.generate(request(bias_strength=2.0, seed=5), progress=lambda *a: seen.append(a))
    side = tiny_engine.model_side
    assert result.followup.shape == (side, side) and result.followup.dtype == np.float32
    assert 0 <= result.followup.min() and result.followup.max() <= 1
    assert [layer.layer for layer in result.layers] == list(tiny_engine.default_vital_layers)
    for layer in result.layers:
        assert layer.heatmap.shape == (16, 16) and layer.heatmap.sum() == pytest.approx(1, abs=1e-5)
        assert 0 <= layer.cbi <= 1 and 0 <= layer.ear <= 1 and 0 <= layer.attn_iou <= 1
    assert ("invert", 4, 4) in seen and ("denoise", 4, 4) in seen
    report = json.loads(json.dumps(result.report()))
    assert report["synthetic"] is True and report["seed"] == 5 and report["bias_strength"] == 2.0
    params = report["provenance"]["parameters"]
    assert params["points"] == [{"x": 20.0, "y": 60.0, "confidence": 5, "label": ""}]
    assert params["strength_per_step"] == [2.0] * 4 and params["steps"] == 4
    assert {"torch", "diffusers", "transformers"} <= set(report["provenance"]["packages"])
    assert "path" not in _all_keys(report)  # gradio_client would try to download any {"path": ...} as a file


def _all_keys(value) -> set:
    if isinstance(value, dict):
        return set(value) | set().union(*(_all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_all_keys(v) for v in value)) if value else set()
    return set()


def test_gbca_raises_attention_on_the_lesion(tiny_engine):
    on = tiny_engine.generate(request(bias_strength=4.0))
    off = tiny_engine.generate(request(bias_strength=0.0))
    for a, b in zip(on.layers, off.layers):
        assert a.attn_iou > b.attn_iou, (a.layer, a.attn_iou, b.attn_iou)


def test_learned_strength_is_used_when_no_override(tiny_engine):
    result = tiny_engine.generate(request(bias_strength=None))
    assert result.provenance.parameters["strength_per_step"] == pytest.approx([0.01] * 4)


def test_no_points_means_no_bias_and_no_attn_iou(tiny_engine):
    with_bias = tiny_engine.generate(request(points=[], bias_strength=5.0))
    without = tiny_engine.generate(request(points=[], bias_strength=0.0))
    np.testing.assert_allclose(with_bias.followup, without.followup, atol=1e-6)
    assert all(layer.attn_iou is None for layer in with_bias.layers)


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


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"sigma_ratio": 0.5}, "sigma_ratio=0.5 is outside"),
        ({"bias_strength": S_MAX + 1}, "bias_strength=11.0 is outside"),
        ({"bias_strength": -1.0}, "bias_strength=-1.0 is outside"),
        ({"vital_layers": (0, 9)}, r"vital layers \[9\] outside this model's layers 0–4"),
        ({"capture_layers": (7,)}, r"capture layers \[7\] outside"),
        ({"points": [LesionPoint(72, 5)]}, "outside the 72x80 image"),
        ({"progression_text": "   "}, "progression description is empty"),
        ({"steps": 0}, "steps=0 is outside"),
        ({"noise_mix": 1.0}, "noise_mix=1.0 is outside"),
    ],
)
def test_bad_requests_raise_value_errors_naming_the_value(tiny_engine, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        tiny_engine.generate(request(**kwargs))


def test_cancel_stops_generation(tiny_engine):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GenerationCancelled, match="cancelled during (invert|denoise) at step 1"):
        tiny_engine.generate(request(), cancel=cancel)


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


def test_every_engine_refuses_a_lateral_film_at_its_boundary(tiny_engine):
    """Orientation is data (DESIGN): whoever calls Engine.generate, a lateral view gets no follow-up."""
    from legend_demo.grounding.orientation import LateralViewError
    from legend_demo.image_io import LoadedImage

    lateral = LoadedImage(array=chest(), original_size=(72, 80), source_format="dicom", bit_depth=12,
                          dicom_info={"ViewPosition": "LL", "PatientOrientation": "A\\F"})
    with pytest.raises(LateralViewError, match="lateral view"):
        tiny_engine.generate(request(image=lateral))
    mirrored = LoadedImage(array=chest(), original_size=(72, 80), source_format="dicom", bit_depth=12,
                           dicom_info={"ViewPosition": "PA", "BodyPartExamined": "KNEE"})
    result = tiny_engine.generate(request(image=mirrored))
    assert any("KNEE" in w for w in result.provenance.warnings)
