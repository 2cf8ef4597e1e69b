"""Dual-path LeGend-Diffusion editing on any FLUX-family transformer (thesis §5.2.3, eqs. 5.5–5.10).

One generation, top to bottom (`DualPathEngine._generate` (engines/dual_path.py) → `DualPathEditor.run`):
1. frame the prior to the square model view and encode it (method/codecs.py);
2. the shared start: invert the prior with the source prompt (inverse Euler, eq. 5.8 — FLUX), or seeded noise for
   reference-conditioned models (the embedded model sees the prior as extra input channels, so it needs no inversion);
3. denoise [source; edit] rows in one batch from that start with GBCA processors installed (processors.py):
   at vital layers the edit row takes the source row's image K/V and its keys get the Gaussian bias s(τ)·r
   (eqs. 5.5–5.7, 5.10); optional keep-region blending (the edit row outside the edit region W is replaced by
   the source row after every step) and optional guidance of the edit row away from the source row;
4. decode both rows and measure the captured maps (CBI / EAR / Attn-IoU, metrics.py).
Engine.generate (engines/base.py) then composites edit − source onto the film (composite.py).
The source row is at exactly the edit row's noise level at every step because both are one batch.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch

from .edit_region import token_weights
from ..core.errors import GenerationError, raise_if_cancelled
from ..core.geometry import SquareFrame
from .layer_spec import check_layers
from .metrics import LayerAttention
from ..core.points import LesionPoint
from .prior import gaussian_prior
from .processors import GBCAState, attention_layers, gbca_installed
from .sampling import denoise, flux_sigmas, invert
from .strength import StrengthMLP, request_strength
from .codecs import Codec, image_ids
from .request import GenerationRequest, ProgressFn

TextEncoder = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]  # prompts → (embeds (B, T, J), pooled (B, P))
Start = Literal["inversion", "noise"]
FLUX_DEV_VITAL_LAYERS = (0, 1, 2, 17, 18, 25, 28, 53, 54, 56)  # thesis §5.3.1 (57 layers: 19 double + 38 single)


@dataclass
class DualPathOutput:
    """What one dual-path run produced, at the (side, side) model view."""

    source_view: np.ndarray  # (side, side) decoded source row
    edit_view: np.ndarray  # (side, side) decoded edit row
    prior_view: np.ndarray  # (side, side) the prior as the model saw it
    prior_map: np.ndarray  # (h, w) Gaussian prior R (eq. 5.5)
    frame: SquareFrame
    layers: list[LayerAttention]
    timings_s: dict[str, float]
    sigmas: list[float]
    strength_per_step: list[float]
    vital_layers: list[int]
    bias_layers: list[int]
    capture_layers: list[int]
    keep_weights: np.ndarray | None = None  # (h, w) token-grid W when keep-region blending ran


@dataclass
class DualPathEditor:
    """The method, independent of how the components were loaded (FLUX.1-dev, the embedded model, tiny tests)."""

    transformer: Any
    codec: Codec
    encode_text: TextEncoder
    scheduler_config: dict
    strength_mlp: StrengthMLP | None = None
    guidance_scale: float | None = 3.5  # FLUX's guidance embedding; None for transformers without one
    model_side: int = 256
    reference_conditioned: bool = False  # the transformer's input is [noisy tokens; prior tokens] along channels
    start: Start = "inversion"
    edit_guidance: float = 1.0  # w in v_edit ← v_src + w·(v_edit − v_src); 1 = off
    bias_layers: tuple[int, ...] | None = None  # layers with the Gaussian key bias; None = the vital layers
    inversion_cache_size: int = 8  # K seeds and the GBCA-off comparison reuse one inversion
    _inversions: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    @property
    def num_layers(self) -> int:
        return len(attention_layers(self.transformer))

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.transformer.parameters() if p.is_floating_point()).dtype

    def velocity(self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor,
                 reference: torch.Tensor | None = None) -> torch.Tensor:
        """v_θ(x_t, t, text[, prior]): x (B, N, C), t (B,) flow times, reference (1 or B, N, C) → (B, N, C)."""
        rows = x.shape[0]
        if self.reference_conditioned:
            if reference is None:
                raise ValueError("this model is reference-conditioned: pass the prior's tokens")
            x = torch.cat([x, reference.expand(rows, -1, -1)], dim=-1)  # (B, N, 2C)
        guidance = None
        if self.guidance_scale is not None:  # guidance-distilled FLUX.1-dev needs its guidance embedding
            guidance = torch.full((rows,), self.guidance_scale, device=x.device, dtype=x.dtype)
        grid = self.codec.token_grid(self.model_side)
        return self.transformer(
            hidden_states=x,
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            timestep=t.to(device=x.device, dtype=x.dtype).expand(rows),
            img_ids=image_ids(grid, x.device, x.dtype),
            txt_ids=torch.zeros(embeds.shape[1], 3, device=x.device, dtype=x.dtype),
            guidance=guidance,
            return_dict=False,
        )[0]

    def run(
        self,
        request: GenerationRequest,
        vital_layers: tuple[int, ...],
        steps: int,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> DualPathOutput:
        """Start, then dual-path denoise; `request` is already validated by Engine.generate."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        image01, frame = request.image.framed(self.model_side, request.frame_mode)
        points_model = frame.points_to_model(request.points)
        grid = self.codec.token_grid(self.model_side)
        prior_map = gaussian_prior(points_model, (self.model_side, self.model_side), grid, request.sigma_ratio)
        vital = check_layers("vital layers", vital_layers, self.num_layers)
        biased = vital if self.bias_layers is None else check_layers("bias layers", self.bias_layers, self.num_layers)
        capture = vital if request.capture_layers is None else request.capture_layers
        capture = check_layers("capture layers", capture, self.num_layers)
        device, dtype = self.device, self.dtype
        timings["prepare"] = time.perf_counter() - started

        t0 = time.perf_counter()
        x0 = self.codec.encode(torch.from_numpy(image01)[None], device, dtype)  # (1, N_img, C)
        embeds, pooled = self.encode_text([request.source_text, request.progression_text])  # (2, T, J), (2, P)
        embeds, pooled = embeds.to(device, dtype), pooled.to(device, dtype)
        reference = x0 if self.reference_conditioned else None
        timings["encode"] = time.perf_counter() - t0

        sigmas = flux_sigmas(steps, x0.shape[1], self.scheduler_config)
        check = _step_hook(progress, cancel)
        t0 = time.perf_counter()
        start = self._start(request, x0, embeds[:1], pooled[:1], reference, sigmas, check, progress)  # (1, N_img, C)
        timings["invert" if self.start == "inversion" else "start"] = time.perf_counter() - t0

        state = GBCAState(
            prior=torch.from_numpy(prior_map.reshape(-1)) if request.points else None,  # (N_img,)
            strength=request_strength(request.bias_strength, self.strength_mlp, self.device),
            bias_layers=biased,
            inject_layers=vital if request.inject else frozenset(),
            capture_layers=capture,
            dual=True,
        )
        keep = None
        if request.edit_region.keep_blend:
            keep = token_weights(points_model, self.model_side, grid, request.sigma_ratio, request.edit_region.scale)
        strengths: list[float] = []
        t0 = time.perf_counter()
        with torch.no_grad(), gbca_installed(self.transformer, state):
            dual_velocity = self._dual_velocity(embeds, pooled, reference, state, strengths)
            both = denoise(dual_velocity, start.repeat(2, 1, 1), sigmas, callback=check("denoise"),
                           project=None if keep is None else _keep_region(keep, device, dtype))  # (2, N, C)
        timings["denoise"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        decoded = self.codec.decode(both, self.model_side)  # (2, side, side)
        timings["decode"] = time.perf_counter() - t0
        layers = _layer_attention(state, grid, points_model, self.model_side, request)
        return DualPathOutput(
            source_view=decoded[0], edit_view=decoded[1], prior_view=image01, prior_map=prior_map, frame=frame,
            layers=layers, timings_s={k: round(v, 4) for k, v in timings.items()}, sigmas=sigmas,
            strength_per_step=strengths, vital_layers=sorted(vital), bias_layers=sorted(biased),
            capture_layers=sorted(capture), keep_weights=keep,
        )

    def _start(self, request, x0, embeds, pooled, reference, sigmas, check, progress) -> torch.Tensor:
        """The shared start of both rows: the (cached) inversion of the prior, or seeded noise."""
        if self.start == "noise":
            generator = torch.Generator(device="cpu").manual_seed(request.seed)
            return torch.randn(x0.shape, generator=generator).to(x0)  # (1, N_img, C)
        key = (hashlib.sha1(x0.float().cpu().numpy().tobytes()).hexdigest(), request.source_text, tuple(sigmas))
        noise = self._inversions.get(key)
        if noise is None:
            with torch.no_grad():
                source = lambda x, sigma: self.velocity(x, torch.tensor([sigma]), embeds, pooled, reference)
                noise = invert(source, x0, sigmas, callback=check("invert"))  # (1, N_img, C), eq. 5.8
            self._inversions[key] = noise
            while len(self._inversions) > self.inversion_cache_size:
                self._inversions.popitem(last=False)
        elif progress is not None:  # reused from an earlier request with the same image and prompt
            progress("invert", len(sigmas) - 1, len(sigmas) - 1)
        return _mix_seed_noise(noise, request.noise_mix, request.seed)

    def _dual_velocity(self, embeds, pooled, reference, state: GBCAState, strengths: list[float]):
        """Velocity of the [source; edit] batch at σ, with the edit row guided away from the source row when w ≠ 1."""

        def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
            v = self.velocity(x, torch.tensor([sigma]), embeds, pooled, reference)  # (2, N, C)
            strengths.append(state.edit_strength())
            if self.edit_guidance != 1.0:
                v = torch.stack([v[0], v[0] + self.edit_guidance * (v[1] - v[0])])
            return v

        return velocity


def _keep_region(weights: np.ndarray, device, dtype):
    """After each step: x_edit ← m·x_edit + (1 − m)·x_source with m = W on the token grid (RadEdit's keep mask)."""
    m = torch.from_numpy(weights.reshape(1, -1, 1)).to(device=device, dtype=dtype)  # (1, N_img, 1)

    def project(x: torch.Tensor) -> torch.Tensor:  # (2, N, C) rows [source; edit]
        return torch.cat([x[:1], m * x[1:] + (1 - m) * x[:1]])

    return project


def _mix_seed_noise(noise: torch.Tensor, mix: float, seed: int) -> torch.Tensor:
    """z_T ← √(1−η²)·z_T + η·ε(seed): η = 0 keeps the deterministic inversion (the seed then has no effect)."""
    if mix == 0:
        return noise
    generator = torch.Generator(device="cpu").manual_seed(seed)
    fresh = torch.randn(noise.shape, generator=generator, dtype=torch.float32).to(noise.device, noise.dtype)
    return (1 - mix**2) ** 0.5 * noise + mix * fresh


def _step_hook(progress: ProgressFn | None, cancel: threading.Event | None):
    def for_phase(phase: str):
        def callback(step: int, total: int, sigma: float, x: torch.Tensor) -> None:
            raise_if_cancelled(cancel, f"during {phase} at step {step} of {total}")
            if not torch.isfinite(x).all():
                raise GenerationError(f"the model produced non-finite values during {phase} at step {step}")
            if progress is not None:
                progress(phase, step, total)

        return callback

    return for_phase


def _layer_attention(
    state: GBCAState, grid: tuple[int, int], points_model: list[LesionPoint], side: int, request: GenerationRequest
) -> list[LayerAttention]:
    """Each captured layer's map: the mean over denoising steps, renormalised over image keys, measured."""
    layers = []
    for layer in sorted(state.captures):
        per_step = [m.numpy().reshape(grid) for m in state.captures[layer]]  # [(h, w)] per step
        heatmap = np.mean(per_step, axis=0)
        layers.append(LayerAttention.measure(layer, heatmap / heatmap.sum(), np.mean(state.text_mass[layer]),
                                             points_model, side, request.sigma_ratio,
                                             per_step if request.capture_per_step else None))
    return layers
