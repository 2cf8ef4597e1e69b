"""LeGend-Diffusion loading: from_pretrained on a saved tiny FluxPipeline, quantization configs, GBCA weights."""
import numpy as np
import pytest
import torch

from legend_demo.engines.base import GenerationRequest
from legend_demo.engines.flux import LeGendDiffusionEngine, quantization_config
from legend_demo.core.errors import EngineUnavailableError
from legend_demo.method.strength import StrengthMLP
from legend_demo.core.tiny import TINY_SIDE, tiny_flux_pipeline

pytestmark = pytest.mark.slow  # saves and loads pipelines: the slow tier (python -m pytest -m slow)


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-flux")
    tiny_flux_pipeline(seed=4).save_pretrained(folder)
    return folder


def test_from_pretrained_loads_a_local_folder_and_generates(saved_pipeline, tmp_path):
    strength = StrengthMLP()
    with torch.no_grad():
        strength.fc2.bias.fill_(1.0)  # s ≈ softplus(1) ≈ 1.31 at every τ
    weights = strength.save(tmp_path / "gbca.safetensors")
    engine = LeGendDiffusionEngine.from_pretrained(
        str(saved_pipeline), quantization=None, device="cpu", gbca_weights=str(weights),
        model_side=TINY_SIDE, default_steps=2, max_sequence_length=64,
    )
    assert engine.num_layers == 5 and engine.default_vital_layers == (0, 1, 2, 3, 4)
    result = engine.generate(GenerationRequest(image=np.full((64, 64), 0.5, np.float32), progression_text="new effusion",
                                               points=[{"x": 10, "y": 50}]))
    params = result.provenance.parameters
    assert params["bias_strength_mode"] == "learned s(tau)"
    expected = 10 * np.tanh(np.log1p(np.e) / 10)  # s_max·tanh(softplus(1) / s_max)
    assert params["strength_per_step"] == pytest.approx([expected] * 2, rel=1e-4)
    prints = result.provenance.checkpoint_fingerprints
    assert prints["flux"]["scope"] == "configs" and prints["stage2_gbca"]["scope"] == "file"
    assert result.provenance.load["quantization"] is None


def test_auto_quantization_is_full_precision_on_cpu(saved_pipeline):
    engine = LeGendDiffusionEngine.from_pretrained(str(saved_pipeline), quantization="auto", device="cpu", model_side=TINY_SIDE)
    assert engine.load_options["quantization"] is None and engine.load_options["dtype"] == "float32"


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_quantized_loading_needs_cuda(saved_pipeline, kind):
    with pytest.raises(EngineUnavailableError, match=f"{kind} loading needs a CUDA GPU"):
        LeGendDiffusionEngine.from_pretrained(str(saved_pipeline), quantization=kind, device="cpu")


def test_missing_checkpoint_is_reported_not_raised_raw(tmp_path):
    with pytest.raises(EngineUnavailableError, match="cannot load FLUX from"):
        LeGendDiffusionEngine.from_pretrained(str(tmp_path / "nowhere"), quantization=None, device="cpu")


def test_quantization_configs_match_the_thesis_setup():
    nf4 = quantization_config("nf4")
    assert nf4.quant_backend == "bitsandbytes_4bit"
    assert nf4.quant_kwargs == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.bfloat16}
    assert nf4.components_to_quantize == ["transformer", "text_encoder_2"]
    assert quantization_config("int8").quant_kwargs == {"load_in_8bit": True}
    assert quantization_config(None) is None
    with pytest.raises(ValueError, match="quantization='fp8'"):
        quantization_config("fp8")


def test_registry_explains_why_flux_is_unavailable(monkeypatch, tmp_path):
    from legend_demo.engines.registry import engine_info

    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("LEGEND_FLUX_PATH", raising=False)
    info = engine_info("legend-diffusion")
    assert not info.available and "checkpoints/flux1-dev" in info.reason
