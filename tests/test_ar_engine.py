"""LeGendAREngine on a tiny random Emu3 (CPU): the Engine contract (model-view rows, film, provenance), the VQ
round trip as source row, keep-region blending, progress, loading errors and the registry's reasons (cancel, refusals,
zero bias = stock and the rest every engine passes: test_engine_contract.py)."""

import numpy as np
import pytest
import torch

from legend_demo.ar.backbone import ARBackbone
from legend_demo.ar.sampling import SamplingOptions
from legend_demo.ar.tiny import TINY_AR_SIDE, save_tiny_emu3, tiny_emu3, write_tiny_pairs
from legend_demo.engines import registry
from legend_demo.engines.ar import LeGendAREngine, bnb_config, default_gbca_layers
from legend_demo.engines.base import GenerationRequest
from legend_demo.core.errors import EngineUnavailableError
from legend_demo.core.points import LesionPoint
from legend_demo.training.data import load_pairs

pytestmark = pytest.mark.slow  # loads and runs the AR engine: the slow tier (python -m pytest -m slow)


@pytest.fixture(scope="module")
def engine(tiny_ar_engine):
    return tiny_ar_engine  # tests/conftest.py: one per session, shared with the engine contract


@pytest.fixture(scope="module")
def film():
    rng = np.random.default_rng(0)
    return (0.3 + 0.4 * rng.random((48, 40))).astype(np.float32)


def request(film, **kwargs):
    kwargs.setdefault("points", [LesionPoint(20, 24)])
    return GenerationRequest(image=film, progression_text="new left lower lobe consolidation", **kwargs)


def test_generate_returns_model_view_rows_film_and_provenance(engine, film):
    phases = []
    result = engine.generate(request(film, bias_strength=2.0), progress=lambda *a: phases.append(a))
    side = TINY_AR_SIDE
    assert result.followup.shape == result.source_reconstruction.shape == result.prior_image.shape == (side, side)
    expected_source = engine.backbone.codec.round_trip(torch.from_numpy(result.prior_image)[None])[0]
    np.testing.assert_array_equal(result.source_reconstruction, expected_source)  # VQ round trip of the prior
    assert result.film is not None and result.film.params["mode"] == "composite"
    assert result.prior_map.shape == engine.token_grid == (8, 8)
    assert [a.layer for a in result.layers] == list(engine.default_vital_layers) == [1, 2]
    for attention in result.layers:
        assert attention.heatmap.sum() == pytest.approx(1.0, abs=1e-5) and attention.attn_iou is not None
    params = result.provenance.parameters
    assert params["gbca_layers"] == [1, 2] and params["bias_strength_mode"] == "fixed"
    assert params["strength_per_layer"] == {"1": 2.0, "2": 2.0}
    assert params["unconditional_text"] == "a frontal chest radiograph"
    kept = params["keep_region"]
    assert kept["kept_tokens"] + kept["sampled_tokens"] == 64 and kept["kept_tokens"] > 0
    assert result.provenance.synthetic is True and result.engine == "legend-ar"
    assert phases == [("decode", r, 8) for r in range(1, 9)]
    assert result.timings_s["tokens_per_s"] > 0


def test_same_seed_same_follow_up(engine, film):
    a = engine.generate(request(film, seed=5, edit_region=_no_keep()))
    b = engine.generate(request(film, seed=5, edit_region=_no_keep()))
    c = engine.generate(request(film, seed=6, edit_region=_no_keep()))
    np.testing.assert_array_equal(a.followup, b.followup)
    assert not np.array_equal(a.followup, c.followup)


def _no_keep():
    from legend_demo.method.edit_region import EditRegion

    return EditRegion(keep_blend=False)


def test_no_points_with_keep_blend_returns_the_source_row(engine, film):
    result = engine.generate(request(film, points=[]))
    np.testing.assert_array_equal(result.followup, result.source_reconstruction)
    assert result.provenance.parameters["keep_region"]["sampled_tokens"] == 0
    assert result.provenance.parameters["strength_per_layer"] == {}  # no points → no bias


def test_per_row_maps_and_capture_layers(engine, film):
    result = engine.generate(request(film, capture_layers=(0, 3), capture_per_step=True, edit_region=_no_keep()))
    assert [a.layer for a in result.layers] == [0, 3]
    for attention in result.layers:
        assert len(attention.per_step) == 8
        assert all(m.shape == (8, 8) and m.sum() == pytest.approx(1.0, abs=1e-5) for m in attention.per_step)


def test_engine_construction_errors():
    model, tokenizer = tiny_emu3()
    backbone = ARBackbone.from_model(model, tokenizer)
    with pytest.raises(ValueError, match="factor"):
        LeGendAREngine(backbone, checkpoint="x", model_side=15)
    with pytest.raises(ValueError, match="GBCA layers"):
        LeGendAREngine(backbone, checkpoint="x", model_side=16, gbca_layers=(4,))
    with pytest.raises(ValueError, match="quantization"):
        bnb_config("fp8")
    assert default_gbca_layers(32) == (14, 15, 16) and default_gbca_layers(4) == (1, 2)


def test_profile_off_and_on_per_layer(engine, tmp_path):
    pairs = load_pairs(write_tiny_pairs(tmp_path / "pairs", count=3, side=32, val=0), "all", TINY_AR_SIDE)
    run = engine.profile(pairs, bias_strength=3.0)
    table = run.table()
    assert [(r["layer"], r["gbca"]) for r in table] == [(l, g) for g in ("off", "on") for l in range(4)]
    assert all(r["pairs"] == 3 and r["attn_iou"] is not None for r in table)
    assert run.strengths == {1: 3.0, 2: 3.0}
    on = {r["layer"]: r for r in table if r["gbca"] == "on"}
    off = {r["layer"]: r for r in table if r["gbca"] == "off"}
    assert on[0]["cbi"] == pytest.approx(off[0]["cbi"], abs=1e-6)  # before the first biased layer
    assert on[1]["attn_iou"] > off[1]["attn_iou"]
    wrong_side = load_pairs(tmp_path / "pairs", "all", 32)
    with pytest.raises(ValueError, match="32"):
        engine.profile(wrong_side)


def test_from_pretrained_on_a_saved_folder_and_its_errors(tmp_path):
    folder = save_tiny_emu3(tmp_path / "emu3", seed=4)
    engine = LeGendAREngine.from_pretrained(str(folder), model_side=TINY_AR_SIDE, sampling=SamplingOptions(top_k=16))
    assert engine.num_layers == 4 and engine.load_options["quantization"] is None
    assert engine.fingerprints["emu3"]["scope"] == "configs"
    with pytest.raises(EngineUnavailableError, match="cannot load"):
        LeGendAREngine.from_pretrained(str(tmp_path / "missing"))
    with pytest.raises(EngineUnavailableError, match="LoRA not found"):
        LeGendAREngine.from_pretrained(str(folder), lora=str(tmp_path / "no-lora"))
    with pytest.raises(EngineUnavailableError, match="GBCA weights not found"):
        LeGendAREngine.from_pretrained(str(folder), gbca_weights=str(tmp_path / "none.safetensors"))
    with pytest.raises(EngineUnavailableError, match="CUDA"):
        LeGendAREngine.from_pretrained(str(folder), quantization="nf4", device="cpu")
    (tmp_path / "bad-lora").mkdir()
    with pytest.raises(EngineUnavailableError, match="no LoRA adapter"):
        LeGendAREngine.from_pretrained(str(folder), lora=str(tmp_path / "bad-lora"))


def test_registry_lists_the_engine_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.delenv("LEGEND_EMU3_PATH", raising=False)
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path))
    info = registry.engine_info("legend-ar")
    assert "legend-ar" in [i.name for i in registry.available_engines()]
    assert not info.available and info.reason == "no Emu3-Gen checkpoint: put it in checkpoints/emu3-gen/ or set LEGEND_EMU3_PATH"
    with pytest.raises(EngineUnavailableError, match="emu3-gen"):
        registry.load_engine("legend-ar")
    monkeypatch.setenv("LEGEND_EMU3_PATH", str(tmp_path))
    monkeypatch.delenv("LEGEND_ALLOW_CPU_EMU3", raising=False)
    if not torch.cuda.is_available():
        assert registry.engine_info("legend-ar").reason == "Emu3-Gen (8B parameters) needs a CUDA GPU; none is visible"


def test_registry_loads_the_engine_when_allowed_on_cpu(monkeypatch, tmp_path):
    folder = save_tiny_emu3(tmp_path / "emu3")
    monkeypatch.setenv("LEGEND_EMU3_PATH", str(folder))
    monkeypatch.setenv("LEGEND_ALLOW_CPU_EMU3", "1")
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path / "none"))
    info = registry.engine_info("legend-ar")
    assert info.available and info.reason == "Emu3-Gen from LEGEND_EMU3_PATH (no LoRA)"
    assert str(tmp_path) not in info.reason  # no server path in what users see
    try:
        engine = registry.load_engine("legend-ar", model_side=TINY_AR_SIDE)
        assert isinstance(engine, LeGendAREngine) and engine.model_side == TINY_AR_SIDE
    finally:
        registry.clear_cache()


def test_quantization_configs_keep_the_tokenizer_and_head_unquantized():
    nf4, int8 = bnb_config("nf4"), bnb_config("int8")
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_compute_dtype == torch.bfloat16
    assert int8.load_in_8bit and bnb_config(None) is None
    assert nf4.llm_int8_skip_modules == int8.llm_int8_skip_modules
    from transformers.quantizers.quantizers_utils import should_convert_module

    model, _ = tiny_emu3()
    linear = [name for name, module in model.named_modules() if type(module) is torch.nn.Linear]
    kept = {name for name in linear if not should_convert_module(name, nf4.llm_int8_skip_modules)}
    tokenizer_and_head = {name for name in linear if name.startswith("model.vqmodel.") or name == "lm_head"}
    assert tokenizer_and_head and kept == tokenizer_and_head  # transformers' own rule keeps exactly these


def test_free_vram_check_refuses_with_the_numbers(monkeypatch):
    from legend_demo.engines import ar
    from legend_demo.engines.loading import LoadPlan

    plan = LoadPlan("cuda", "nf4", torch.bfloat16)  # what from_pretrained checks before loading on CUDA
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (4 * 2**30, 80 * 2**30))
    with pytest.raises(EngineUnavailableError, match=r"4\.0 GiB free of 80\.0 GiB.*nf4.*9 GiB"):
        plan.check_free_vram(ar.FREE_VRAM_NEEDED_GB, "LeGend AR")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (40 * 2**30, 80 * 2**30))
    LoadPlan("cuda", None, torch.bfloat16).check_free_vram(ar.FREE_VRAM_NEEDED_GB, "LeGend AR")  # 22 GiB of 40 free


def test_out_of_memory_while_sampling_becomes_a_generation_error(engine, film, monkeypatch):
    from legend_demo.engines import ar
    from legend_demo.core.errors import GenerationError

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ar, "sample_follow_up", oom)
    with pytest.raises(GenerationError, match="out of GPU memory.*released"):
        engine.generate(request(film))
