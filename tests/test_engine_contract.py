"""One engine contract (diffusers' ModelTesterMixin idea): every engine the tests can build passes the same suite.

The engines: the shipped embedded model (the CPU default users run), LeGend-Diffusion on tiny random FLUX
(`tiny_engine`) and LeGend AR on a tiny random Emu3 (at a 16-pixel model view). Each is wrapped in an
`EngineCase` that knows only what differs between engines (how to run it with the stock attention, what its
source row must equal, how its keep region shows, what a cancel says); the tests themselves are written once:

- zero bias = stock: bias 0 without injection equals the engine with its stock attention installed, and a
  bias is live when it is not 0;
- the source row reconstructs the prior on its own (the same source-only run, never touched by the edit row);
- the keep region is respected (no points + keep blending → the follow-up is the source row; with points the
  edit changes only inside W);
- cancel stops the generation with GenerationCancelled;
- provenance carries the same keys for every engine, and report() is JSON with no server path;
- bad requests are refused with a ValueError naming the value, before any model time, and a lateral film is refused;
- no points means no bias (and no Attn-IoU), whatever the strength;
- (the dual-path engines only) equal prompts, full injection and no bias give the source row.
Engine-specific behaviour stays in the engine's own file (test_sampling_engine.py, test_ar_engine.py,
test_embedded.py, test_embedded_shipped.py).
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pytest
import torch

from legend_demo.method.edit_region import EditRegion, token_weights
from legend_demo.engines.base import Engine, GenerationCancelled, GenerationRequest, GenerationResult
from legend_demo.core.points import LesionPoint
from legend_demo.method.sampling import denoise, flux_sigmas, invert

PROVENANCE_KEYS = {"created_utc", "synthetic", "engine", "checkpoint", "checkpoint_fingerprints", "load", "packages",
                   "parameters", "warnings"}
PARAMETER_KEYS = {"progression_text", "source_text", "points", "sigma_ratio", "bias_strength", "bias_strength_mode",
                  "seed", "vital_layers", "capture_layers", "keep_region_blending", "model_side", "token_grid", "frame",
                  "output"}
REPORT_KEYS = {"synthetic", "notice", "engine", "checkpoint", "points", "sigma_ratio", "bias_strength", "seed",
               "layers", "output", "timings_s", "provenance"}


def chest(h: int = 80, w: int = 72) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (0.25 + 0.6 * np.exp(-((x - w / 2) ** 2 / 300 + (y - h / 2) ** 2 / 500))).astype(np.float32)


@dataclass
class EngineCase:
    """One engine and what the contract needs to know about it (the rest is the same for every engine)."""

    engine: Engine
    layer_name: str  # what the engine calls the request's vital_layers in its refusals
    cancel_match: str  # what GenerationCancelled says when the flag is set before the first step
    steps: int | None  # a short run (None: the engine's own)
    stock: Callable[[pytest.MonkeyPatch], None]  # make the engine run its stock attention (no GBCA installed)
    source_alone: Callable[[Engine, GenerationRequest, GenerationResult], np.ndarray]  # the source row by itself
    keep_respected: Callable[[Engine, GenerationRequest, pytest.MonkeyPatch], GenerationResult]  # generates, asserts
    strong_bias: float = 8.0

    def request(self, **kwargs) -> GenerationRequest:
        args = dict(image=chest(), progression_text="new right lower lobe consolidation", points=[LesionPoint(20, 60)],
                    steps=self.steps)
        return GenerationRequest(**(args | kwargs))


# ------------------------------------------------------------------ the dual-path engines (FLUX, embedded)
def _stock_dual_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transformer keeps its own attention processors: nothing of GBCA is installed."""
    from legend_demo.method import dual_path

    @contextmanager
    def stock(transformer, state):  # only the input reader (text/image lengths, s(τ) for provenance)
        handle = transformer.register_forward_pre_hook(state.read_inputs, with_kwargs=True)
        try:
            yield state
        finally:
            handle.remove()

    monkeypatch.setattr(dual_path, "gbca_installed", stock)


def _dual_path_source_alone(engine: Engine, request: GenerationRequest, result: GenerationResult) -> np.ndarray:
    """One row, the source text, the engine's own start (inversion of the prior, or seeded noise), stock attention."""
    editor = engine.editor
    x0 = editor.codec.encode(torch.from_numpy(result.prior_image)[None], "cpu", torch.float32)  # (1, N, C)
    embeds, pooled = editor.encode_text([request.source_text])
    reference = x0 if editor.reference_conditioned else None
    velocity = lambda x, sigma: editor.velocity(x, torch.tensor([sigma]), embeds, pooled, reference)  # noqa: E731
    sigmas = flux_sigmas(request.steps or engine.default_steps, x0.shape[1], editor.scheduler_config)
    with torch.no_grad():
        if editor.start == "noise":
            start = torch.randn(x0.shape, generator=torch.Generator(device="cpu").manual_seed(request.seed))
        else:
            start = invert(velocity, x0, sigmas)
        return editor.codec.decode(denoise(velocity, start, sigmas), editor.model_side)[0]


def _dual_path_keep(engine: Engine, request: GenerationRequest, monkeypatch: pytest.MonkeyPatch) -> GenerationResult:
    """Outside the token-grid edit region W the edit row's tokens are the source row's, exactly; inside they differ."""
    codec, seen = engine.editor.codec, []
    decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda x, side: seen.append(x.clone()) or decode(x, side))
    result = engine.generate(request)
    source, edit = seen[-1]  # (N, C) each: the rows [source; edit] the sampler returned
    w = token_weights(result.frame.points_to_model(request.points), engine.model_side, engine.token_grid,
                      request.sigma_ratio, request.edit_region.scale).reshape(-1)  # (N,)
    outside = torch.from_numpy(w == 0)
    assert outside.any() and (~outside).any()
    torch.testing.assert_close(edit[outside], source[outside], rtol=0, atol=0)
    assert (edit[~outside] - source[~outside]).abs().max() > 1e-4
    return result


# ------------------------------------------------------------------ the AR engine
def _stock_ar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampling without the `gbca=` state: the decoder's attention function is plain SDPA."""
    from legend_demo.engines import ar

    sample = ar.sample_follow_up
    monkeypatch.setattr(ar, "sample_follow_up", lambda backbone, batch, state, *args, **kwargs:
                        sample(backbone, batch, None, *args, **kwargs))


def _ar_source_alone(engine: Engine, request: GenerationRequest, result: GenerationResult) -> np.ndarray:
    """The VQ round trip decode(encode(prior))."""
    return engine.backbone.codec.round_trip(torch.from_numpy(result.prior_image)[None])[0]


def _ar_keep(engine: Engine, request: GenerationRequest, monkeypatch: pytest.MonkeyPatch) -> GenerationResult:
    """X_A's own token is emitted wherever W = 0, and only there."""
    result = engine.generate(request)
    w = token_weights(result.frame.points_to_model(request.points), engine.model_side, engine.token_grid,
                      request.sigma_ratio, request.edit_region.scale)
    kept = result.provenance.parameters["keep_region"]
    assert 0 < kept["kept_tokens"] == int((w == 0).sum()) < w.size
    assert kept["kept_tokens"] + kept["sampled_tokens"] == w.size
    return result


# ------------------------------------------------------------------ the engines
def _embedded(request) -> EngineCase:
    import legend_demo as ld

    return EngineCase(ld.load_engine("embedded"), "vital layers", r"cancelled during (start|denoise) at step 1", 2,
                      _stock_dual_path, _dual_path_source_alone, _dual_path_keep)


def _tiny_flux(request) -> EngineCase:
    return EngineCase(request.getfixturevalue("tiny_engine"), "vital layers",
                      r"cancelled during (invert|denoise) at step 1", 4, _stock_dual_path, _dual_path_source_alone,
                      _dual_path_keep)


@pytest.fixture(scope="session")
def small_ar_engine(tiny_ar_engine):
    """The tiny AR engine's backbone at a 16-pixel model view: a 4×4 token grid, 20 decoding steps instead of 72."""
    from legend_demo.engines.ar import LeGendAREngine

    return LeGendAREngine(tiny_ar_engine.backbone, checkpoint=tiny_ar_engine.checkpoint, model_side=16,
                          sampling=tiny_ar_engine.sampling)


def _tiny_ar(request) -> EngineCase:
    return EngineCase(request.getfixturevalue("small_ar_engine"), "GBCA layers", "cancelled before tokenizing", None,
                      _stock_ar, _ar_source_alone, _ar_keep)


CASES = {"embedded": _embedded, "tiny-flux": _tiny_flux, "tiny-ar": _tiny_ar}


@pytest.fixture(params=sorted(CASES))
def case(request) -> EngineCase:
    return CASES[request.param](request)


DUAL_PATH = ["embedded", "tiny-flux"]


@pytest.fixture(params=DUAL_PATH)
def dual_path_case(request) -> EngineCase:
    return CASES[request.param](request)


# ------------------------------------------------------------------ the contract
def test_zero_bias_is_the_stock_model_and_a_bias_is_live(case, monkeypatch):
    request = case.request(bias_strength=0.0, inject=False, capture_layers=(), output_mode="model-view",
                           edit_region=EditRegion(keep_blend=False))
    gbca_off = case.engine.generate(request)
    assert gbca_off.provenance.bias_strength_mode == "off"
    biased = case.engine.generate(replace(request, bias_strength=case.strong_bias))
    assert np.abs(biased.followup - gbca_off.followup).max() > 1e-4  # the bias reaches the follow-up
    case.stock(monkeypatch)
    stock = case.engine.generate(request)
    np.testing.assert_allclose(gbca_off.followup, stock.followup, atol=1e-5)
    np.testing.assert_allclose(gbca_off.source_reconstruction, stock.source_reconstruction, atol=1e-5)


def test_the_source_row_reconstructs_the_prior_on_its_own(case):
    """The source row is the engine's source-only reconstruction of the prior, whatever the edit row's text and bias."""
    request = case.request(bias_strength=case.strong_bias, seed=3)
    result = case.engine.generate(request)
    np.testing.assert_allclose(result.source_reconstruction, case.source_alone(case.engine, request, result), atol=1e-5)
    other = case.engine.generate(replace(request, progression_text="completely different text", bias_strength=0.0,
                                         inject=False))
    np.testing.assert_allclose(other.source_reconstruction, result.source_reconstruction, atol=1e-5)
    assert np.abs(other.followup - result.followup).max() > 1e-3  # while the edit row follows its own text and bias


def test_no_points_means_no_bias_and_no_attn_iou(case):
    request = case.request(points=[], edit_region=EditRegion(keep_blend=False), output_mode="model-view")
    with_bias = case.engine.generate(replace(request, bias_strength=5.0))
    without = case.engine.generate(replace(request, bias_strength=0.0))
    np.testing.assert_allclose(with_bias.followup, without.followup, atol=1e-6)
    assert with_bias.layers and all(layer.attn_iou is None for layer in with_bias.layers)


def test_the_keep_region_is_respected(case, monkeypatch):
    nothing_to_edit = case.engine.generate(case.request(points=[], bias_strength=case.strong_bias))
    np.testing.assert_array_equal(nothing_to_edit.followup, nothing_to_edit.source_reconstruction)
    request = case.request(bias_strength=case.strong_bias, sigma_ratio=0.1, edit_region=EditRegion(scale=1.0))
    result = case.keep_respected(case.engine, request, monkeypatch)
    assert result.provenance.keep_region_blending is True


def test_cancel_stops_generation(case):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GenerationCancelled, match=case.cancel_match):
        case.engine.generate(case.request(), cancel=cancel)


def test_provenance_and_report_are_the_same_shape_for_every_engine(case):
    result = case.engine.generate(case.request(bias_strength=2.0, seed=5))
    provenance = result.provenance.to_dict()
    assert PROVENANCE_KEYS <= set(provenance) and PARAMETER_KEYS <= set(provenance["parameters"])
    assert provenance["engine"] == case.engine.name == result.engine and provenance["synthetic"] is True
    assert provenance["parameters"]["bias_strength_mode"] == "fixed" and provenance["parameters"]["seed"] == 5
    assert provenance["parameters"]["vital_layers"] == sorted(case.engine.default_vital_layers)
    assert {"torch", "diffusers", "transformers", "legend_demo"} <= set(provenance["packages"])
    report = result.report()
    text = json.dumps(report)  # plain JSON: no numpy, no tensors
    assert json.loads(text) == report and REPORT_KEYS <= set(report)
    assert report["synthetic"] is True and report["seed"] == 5 and report["bias_strength"] == 2.0
    point = {"x": 20.0, "y": 60.0, "confidence": 5, "label": ""}
    assert report["points"] == provenance["parameters"]["points"] == [point]
    assert [layer["layer"] for layer in report["layers"]] == sorted(case.engine.default_vital_layers)
    for layer in result.layers:
        assert layer.heatmap.shape == case.engine.token_grid and layer.heatmap.sum() == pytest.approx(1, abs=1e-5)
        assert 0 <= layer.cbi <= 1 and 0 <= layer.ear <= 1 and 0 <= layer.attn_iou <= 1
    assert "/root" not in text and "site-packages" not in text and "/tmp" not in text  # no server path
    assert "path" not in _all_keys(report)  # gradio_client would try to download any {"path": ...} as a file
    side = case.engine.model_side
    assert result.followup.shape == result.source_reconstruction.shape == result.prior_image.shape == (side, side)
    assert result.followup.dtype == np.float32 and 0 <= result.followup.min() and result.followup.max() <= 1
    assert result.film is not None and result.film.display.shape == (80, 72)


def _all_keys(value) -> set:
    if isinstance(value, dict):
        return set(value) | set().union(*(_all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_all_keys(v) for v in value)) if value else set()
    return set()


def _bad_requests(case: EngineCase) -> list[tuple[dict, str]]:
    n, s_max = case.engine.num_layers, case.engine.max_bias_strength
    return [
        ({"sigma_ratio": 0.5}, "sigma_ratio=0.5 is outside"),
        ({"bias_strength": s_max + 1}, rf"bias_strength={s_max + 1} is outside \[0, {s_max}\]"),
        ({"bias_strength": -1.0}, r"bias_strength=-1.0 is outside"),
        ({"vital_layers": (0, n + 4)}, rf"{case.layer_name} \[{n + 4}\] outside this model's layers 0–{n - 1}"),
        ({"vital_layers": (1.7,)}, case.layer_name),  # a layer of 1.7 is refused, never truncated to 1
        ({"capture_layers": (n + 2,)}, rf"capture layers \[{n + 2}\] outside"),
        ({"points": [LesionPoint(72, 5)]}, "outside the 72x80 image"),
        ({"progression_text": "   "}, "progression description is empty"),
        ({"steps": 0}, "steps=0 is outside"),
        ({"noise_mix": 1.0}, "noise_mix=1.0 is outside"),
        ({"seed": -1}, "seed=-1 is outside"),
        ({"output_mode": "poster"}, "output_mode='poster'"),
    ]


def test_bad_requests_are_refused_naming_the_value(case):
    started = []
    for kwargs, needle in _bad_requests(case):
        with pytest.raises(ValueError, match=needle):
            case.engine.generate(case.request(**kwargs), progress=lambda *a: started.append(a))
    assert started == []  # refused before any model step


def test_equal_prompts_full_injection_and_no_bias_give_the_source(dual_path_case):
    """Dual-path engines only (the AR engine has no injection): the edit row with the source's own text, all of its
    vital layers injected and no bias is the source row."""
    text = "a frontal chest radiograph"
    result = dual_path_case.engine.generate(dual_path_case.request(progression_text=text, source_text=text,
                                                                   bias_strength=0.0))
    np.testing.assert_allclose(result.followup, result.source_reconstruction, atol=1e-5)


def test_a_lateral_film_is_refused_at_the_engine_boundary(case):
    """Orientation is data (DESIGN): whoever calls Engine.generate, a lateral view gets no follow-up."""
    from legend_demo.grounding.orientation import LateralViewError
    from legend_demo.core.image_io import LoadedImage

    lateral = LoadedImage(array=chest(), original_size=(72, 80), source_format="dicom", bit_depth=12,
                          dicom_info={"ViewPosition": "LL", "PatientOrientation": "A\\F"})
    with pytest.raises(LateralViewError, match="lateral view"):
        case.engine.generate(case.request(image=lateral))
    knee = LoadedImage(array=chest(), original_size=(72, 80), source_format="dicom", bit_depth=12,
                       dicom_info={"ViewPosition": "PA", "BodyPartExamined": "KNEE"})
    result = case.engine.generate(case.request(image=knee))
    assert any("KNEE" in w for w in result.provenance.warnings)
