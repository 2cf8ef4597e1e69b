"""LeGend AR (thesis ch. 4): Emu3-Gen + a LoRA, GBCA on mid-depth decoder layers, KV-cached sampling.

One generation (`LeGendAREngine._generate`):
1. frame the prior to the square model view (thesis: 256²) and tokenize it with Emu3's VQ tokenizer → X_A on the
   tokenizer's grid (32×32 for Emu3-Gen at 256²); the source row is the VQ round trip decode(encode(prior)), so the
   tokenizer's own error cancels in edit − source when the change is composited onto the film;
2. rows [X_A; X_D; X_B header] with the progression text, plus (classifier-free guidance) the same prefix with
   the source text as the unconditional prompt, left-padded into one batch;
3. KV-cached sampling of X̂_B (ar/sampling.py) with the Gaussian bias s_ℓ·r on the X_A keys at the GBCA layers
   (ar/attention.py, default 14–16 of 32); keep-region blending emits X_A's token where the edit region W = 0;
4. detokenize X̂_B, and the captured maps of the follow-up queries give CBI / EAR / Attn-IoU per layer.
Engine.generate (base.py) then composites edit − source onto the film.
"""
from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core import settings
from ..ar.attention import ARGBCAState
from ..ar.backbone import ARBackbone
from ..ar.lora import load_lora
from ..ar.profiling import ProfileRun, layer_attention, profile_pairs
from ..ar.sampling import SamplingOptions, sample_follow_up
from ..ar.sequence import build_prefix, make_batch
from ..core.checkpoints import LAYOUT, checkpoint_path, public_name
from ..method.edit_region import token_weights
from ..core.errors import EngineUnavailableError, raise_if_cancelled
from ..method.layer_spec import check_layers
from ..method.prior import gaussian_prior
from ..method.strength import S_MAX, StrengthMLP, request_strength, strength_mode
from .base import Engine, GenerationRequest, GenerationResult, ProgressFn
from .cuda import release
from .loading import LoadPlan, PretrainedLoading, check_quantization
from .provenance import Provenance

LABEL = "LeGend AR (Emu3 + LoRA + GBCA)"  # shown in the engine list (registry) and on every result

FREE_VRAM_NEEDED_GB = {"nf4": 9.0, "int8": 13.0, None: 22.0}  # Emu3-Gen 8B weights + KV cache of 2 rows at 256²
THESIS_GBCA_LAYERS, THESIS_DEPTH = (14, 15, 16), 32  # thesis Table 4.2–4.4: L14–16 of 32 decoder layers
THESIS_SIDE = 256  # thesis input side (Emu3-Gen's tokenizer: 32×32 tokens)
GBCA_LAYERS_FILE = "ar_gbca.json"  # written next to the GBCA weights by `train ar`: {"gbca_layers": [...]}
ALLOW_CPU_ENV = "LEGEND_ALLOW_CPU_EMU3"


def default_gbca_layers(num_layers: int) -> tuple[int, ...]:
    """The thesis's layers 14–16 of 32, scaled to the model's depth (e.g. 4 layers → 1, 2)."""
    if num_layers == THESIS_DEPTH:
        return THESIS_GBCA_LAYERS
    scale = (num_layers - 1) / (THESIS_DEPTH - 1)
    return tuple(sorted({round(layer * scale) for layer in THESIS_GBCA_LAYERS}))


def bnb_config(kind: str | None):
    """transformers BitsAndBytesConfig for NF4 / int8 (None: full precision); the VQ tokenizer and lm_head stay unquantized."""
    check_quantization(kind)
    if kind is None:
        return None
    from transformers import BitsAndBytesConfig

    skip = ["model.vqmodel", "lm_head"]  # full module names: transformers matches a pattern from the name's start
    if kind == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
                                  llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


class LeGendAREngine(PretrainedLoading, Engine):
    """Autoregressive LeGend on an Emu3 backbone (thesis ch. 4)."""

    name = "legend-ar"
    label = LABEL
    max_bias_strength = S_MAX
    oom_advice = "try nf4, guidance 1 or fewer capture layers"
    default_steps = 1  # not used: AR decoding has one step per token (kept for the Engine interface)

    def __init__(
        self,
        backbone: ARBackbone,
        *,
        checkpoint: str,
        strength: StrengthMLP | None = None,
        gbca_layers: tuple[int, ...] | None = None,
        model_side: int = THESIS_SIDE,
        sampling: SamplingOptions = SamplingOptions(),
        fingerprints: dict[str, Any] | None = None,
        load_options: dict[str, Any] | None = None,
    ):
        sampling.check()
        super().__init__(checkpoint=checkpoint, fingerprints=fingerprints, load_options=load_options)
        self.backbone = backbone
        self.strength_mlp = strength
        self.model_side = model_side
        self.sampling = sampling
        backbone.codec.token_grid(model_side)  # ValueError now when the side does not tile
        layers = default_gbca_layers(self.num_layers) if gbca_layers is None else gbca_layers
        self._gbca_layers = tuple(sorted(check_layers("GBCA layers", layers, self.num_layers)))

    @property
    def num_layers(self) -> int:
        return self.backbone.num_layers

    @property
    def default_vital_layers(self) -> tuple[int, ...]:
        """The GBCA layers (the AR engine has no K/V injection; 'vital layers' here are where the bias goes)."""
        return self._gbca_layers

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.backbone.codec.token_grid(self.model_side)

    # ------------------------------------------------------------------ generation
    def _generate(self, request: GenerationRequest, progress: ProgressFn | None,
                  cancel: threading.Event | None) -> GenerationResult:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        side, grid, codec = self.model_side, self.token_grid, self.backbone.codec
        image01, frame = request.image.framed(side, request.frame_mode)
        points_model = frame.points_to_model(request.points)
        prior_map = gaussian_prior(points_model, (side, side), grid, request.sigma_ratio)  # (h, w), eq. 4.9
        gbca_layers = self._gbca_layers if request.vital_layers is None else tuple(request.vital_layers)
        gbca_layers = check_layers("GBCA layers", gbca_layers, self.num_layers)
        capture = gbca_layers if request.capture_layers is None else request.capture_layers
        capture = check_layers("capture layers", capture, self.num_layers)
        raise_if_cancelled(cancel, "before tokenizing")
        timings["prepare"] = time.perf_counter() - started

        t0 = time.perf_counter()
        codes_a = codec.encode(torch.from_numpy(image01)[None])[0].cpu()  # (N_A,) X_A
        source_view = codec.decode(codes_a[None], side)[0]  # (side, side) the VQ round trip of the prior
        batch = self._rows(codes_a, request, grid)
        length = batch.ids.shape[1] + batch.layouts[0].b_length
        prior = torch.from_numpy(prior_map.reshape(-1)) if request.points else None  # (N_A,) r, eq. 4.9
        state = ARGBCAState.for_batch(batch, length, self.num_layers, prior, self._strength(request.bias_strength),
                                      gbca_layers, capture, keep_calls=request.capture_per_step)
        keep = None
        if request.edit_region.keep_blend:
            weights = token_weights(points_model, side, grid, request.sigma_ratio, request.edit_region.scale)  # (h, w)
            keep = torch.from_numpy(weights.reshape(-1) == 0)  # (N_A,) emit X_A where W = 0
        timings["encode"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        with torch.no_grad():
            sampled = sample_follow_up(self.backbone, batch, state, self.sampling, request.seed, codes_a, keep,
                                       on_row=_row_hook(progress, cancel))
        timings["sample"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        follow_view = codec.decode(sampled.codes[None], side)[0]  # (side, side) X̂_B detokenized
        timings["detokenize"] = time.perf_counter() - t0
        layers = layer_attention(state, grid, points_model, side, request.sigma_ratio)
        if request.capture_per_step:
            _per_row_maps(layers, state, grid)
        timings = {k: round(v, 4) for k, v in timings.items()}
        timings["tokens_per_s"] = round(sampled.tokens / max(sampled.seconds, 1e-9), 2)
        return self._result(request, followup=follow_view, source=source_view, prior=image01, prior_map=prior_map,
                            frame=frame, layers=layers, timings=timings,
                            provenance=self._provenance(request, state, sampled, gbca_layers, capture, frame))

    def _rows(self, codes_a: torch.Tensor, request: GenerationRequest, grid):
        """[conditional row (progression text); unconditional row (source text) when guided], left-padded."""
        vocab, encode = self.backbone.vocab, self.backbone.encode_text
        texts = [request.progression_text] + ([request.source_text] if self.sampling.guided else [])
        rows, layouts = zip(*(build_prefix(vocab, encode, codes_a, text, grid) for text in texts))
        return make_batch(list(rows), list(layouts), vocab.pad)

    def _strength(self, bias_strength: float | None):
        """A fixed override (0 = GBCA off), else the trained MLP s_ℓ (init 0.01 when no weights are loaded)."""
        return request_strength(bias_strength, self.strength_mlp, self.backbone.device)

    def _provenance(self, request, state: ARGBCAState, sampled, gbca_layers, capture, frame) -> Provenance:
        options = self.sampling
        return Provenance.of(
            self, request, bias_strength_mode=strength_mode(request.bias_strength, self.strength_mlp, "s_l",
                                                            " (MLP of layer depth)"),
            vital_layers=gbca_layers, capture_layers=capture, frame=frame,
            unconditional_text=request.source_text if options.guided else None,
            strength_per_layer={str(k): v for k, v in state.strengths().items()} if state.key_prior is not None else {},
            gbca_layers=sorted(gbca_layers),
            guidance_scale=options.guidance_scale,
            top_k=options.top_k,
            top_p=options.top_p,
            temperature=options.temperature,
            keep_region={"rule": "X_A token emitted where the token-grid edit region W = 0",
                         "kept_tokens": int(sampled.kept.sum()), "sampled_tokens": int((~sampled.kept).sum())},
            source_reconstruction="VQ round trip decode(encode(prior))",
            not_used_by_this_engine={"steps": request.steps, "inject": request.inject, "noise_mix": request.noise_mix},
        )

    # ------------------------------------------------------------------ profiling
    def profile(self, pairs, *, layers=None, gbca_layers=None, bias_strength: float | None = None,
                sigma_ratio: float = 0.10, progress: Callable[[int, int], None] | None = None) -> ProfileRun:
        """Teacher-forcing layer-wise profile (thesis §4.2.1) of a PairSet loaded at this engine's model side."""
        if pairs.side != self.model_side:
            raise ValueError(f"pairs were loaded at {pairs.side}² but this engine works at {self.model_side}²")
        if bias_strength is not None and not 0 <= bias_strength <= self.max_bias_strength:
            raise ValueError(f"bias_strength={bias_strength} is outside [0, {self.max_bias_strength}]")
        grid = self.token_grid
        layers = range(self.num_layers) if layers is None else layers
        capture = check_layers("profiled layers", layers, self.num_layers)
        bias = check_layers("GBCA layers", self._gbca_layers if gbca_layers is None else gbca_layers, self.num_layers)
        priors = [gaussian_prior(points, (pairs.side, pairs.side), grid, sigma_ratio) for points in pairs.points]
        with self._lock:
            return profile_pairs(self.backbone, pairs, grid, priors, self._strength(bias_strength), bias, capture,
                                 sigma_ratio, progress)

    # ------------------------------------------------------------------ loading
    free_vram_gb = FREE_VRAM_NEEDED_GB
    memory_name = "LeGend AR"
    weight_names = ("emu3", "ar_lora", "ar_gbca")

    @classmethod
    def _check_sources(cls, lora: str | None, gbca_weights: str | None) -> None:
        for name, extra in (("LoRA", lora), ("GBCA weights", gbca_weights)):
            if extra is not None and not Path(extra).exists():
                raise EngineUnavailableError(f"{name} not found: {public_name(extra)}")

    @classmethod
    def _load_backbone(cls, path: str, plan: LoadPlan, lora: str | None, gbca_weights: str | None,
                       options: dict[str, Any]):
        """Emu3-Gen (bitsandbytes NF4/int8; the VQ tokenizer and lm_head unquantized), the LoRA, the GBCA MLP and
        the layers it was trained for (ar_gbca.json), the checkpoint's image normalisation."""
        from transformers import AutoTokenizer, Emu3ForConditionalGeneration

        qconfig = bnb_config(plan.quantization)
        try:
            model = Emu3ForConditionalGeneration.from_pretrained(
                path, quantization_config=qconfig, dtype=plan.dtype, device_map={"": plan.device} if qconfig else None)
            tokenizer = AutoTokenizer.from_pretrained(path)
            if qconfig is None:
                model.to(plan.device)
            if lora:
                load_lora(model, lora)
        except torch.OutOfMemoryError:
            release()
            raise EngineUnavailableError("out of GPU memory while loading Emu3-Gen; memory released — use nf4") from None
        except (OSError, ValueError, KeyError) as exc:  # missing folder, bad hub id, incomplete download, bad adapter
            what = public_name(path) + (f" + LoRA {public_name(lora)}" if lora else "")
            raise EngineUnavailableError(f"cannot load Emu3 from {what}: {exc}") from None
        model.eval()
        try:
            strength = StrengthMLP.load(gbca_weights) if gbca_weights else None
        except (OSError, ValueError) as exc:
            raise EngineUnavailableError(f"cannot read GBCA weights: {exc}") from None
        options.setdefault("gbca_layers", _trained_gbca_layers(gbca_weights))
        mean, std, norm_source = image_normalisation(path)
        return ARBackbone.from_model(model, tokenizer, mean, std), strength, {"image_normalisation": norm_source}


def image_normalisation(path: str) -> tuple[list[float], list[float], str]:
    """(mean, std, where from) of the checkpoint's image processor; Emu3's 0.5/0.5 when it has none."""
    try:
        from transformers.utils import cached_file

        found = cached_file(path, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
    except OSError:
        found = None
    if found:
        config = json.loads(Path(found).read_text())
        if "image_mean" in config and "image_std" in config:
            return list(config["image_mean"]), list(config["image_std"]), "preprocessor_config.json"
    return [0.5] * 3, [0.5] * 3, "default (mean 0.5, std 0.5)"


def _trained_gbca_layers(gbca_weights: str | None) -> tuple[int, ...] | None:
    """The layers `train ar` trained the GBCA MLP for (ar_gbca.json next to the weights), else None (default)."""
    if not gbca_weights:
        return None
    record = Path(gbca_weights).with_name(GBCA_LAYERS_FILE)
    if not record.is_file():
        return None
    return tuple(json.loads(record.read_text())["gbca_layers"])


def _row_hook(progress: ProgressFn | None, cancel: threading.Event | None):
    def on_row(row: int, rows: int) -> None:
        raise_if_cancelled(cancel, f"after row {row} of {rows}")
        if progress is not None:
            progress("decode", row, rows)

    return on_row


def _per_row_maps(layers, state: ARGBCAState, grid: tuple[int, int]) -> None:
    """LayerAttention.per_step: one map per generated row (the mean of that row's follow-up queries)."""
    h, w = grid
    for attention in layers:
        calls = state.calls.get(attention.layer, [])
        rows = [torch.stack(calls[r * w : (r + 1) * w]).sum(0).numpy() for r in range(h) if calls[r * w : (r + 1) * w]]
        attention.per_step = [(m / m.sum()).reshape(grid).astype(np.float32) for m in rows]


def availability() -> tuple[bool, str]:
    path = checkpoint_path("emu3")
    folder, env = LAYOUT["emu3"]
    if path is None:
        return False, f"no Emu3-Gen checkpoint: put it in checkpoints/{folder}/ or set {env}"
    if not torch.cuda.is_available() and not settings.get(ALLOW_CPU_ENV):
        return False, "Emu3-Gen (8B parameters) needs a CUDA GPU; none is visible"
    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is None:
        return False, "4-bit Emu3-Gen needs bitsandbytes: pip install -r requirements.txt"
    where = env if settings.get(env) else f"checkpoints/{folder}/"
    return True, f"Emu3-Gen from {where}" + (" + LeGend AR LoRA" if checkpoint_path("ar_lora") else " (no LoRA)")


def load(**options) -> LeGendAREngine:
    ok, reason = availability()
    if not ok:
        raise EngineUnavailableError(reason)
    options.setdefault("lora", checkpoint_path("ar_lora"))
    options.setdefault("gbca_weights", checkpoint_path("ar_gbca"))
    return LeGendAREngine.from_pretrained(checkpoint_path("emu3"), **options)
