"""Dual-path LeGend-Diffusion editing on any FLUX-family transformer (thesis §5.2.3, eqs. 5.8–5.10).

1. encode the prior radiograph to a packed latent; 2. invert it with the source prompt (inverse Euler);
3. denoise [source; edit] rows in one batch from the shared inverted noise, with GBCA processors installed
   (vital-layer K/V injection, Gaussian key bias, capture); 4. decode both rows; 5. measure the captured maps.
The source row is at exactly the edit row's noise level at every step because both are one batch.
"""
from __future__ import annotations

import hashlib
import platform
import threading
from collections import OrderedDict
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import torch

from .. import __version__
from ..errors import GenerationError
from ..geometry import SquareFrame
from ..metrics import attn_iou, cbi, ear
from ..points import LesionPoint, check_inside
from ..prior import gaussian_prior
from ..processors import GBCAState, attention_layers, check_layers, gbca_installed
from ..sampling import denoise, flux_sigmas, invert
from ..strength import StrengthMLP
from .base import GenerationCancelled, GenerationRequest, GenerationResult, LayerAttention, ProgressFn

TextEncoder = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]  # prompts → (embeds (B, T, J), pooled (B, P))


class FluxLatentCodec:
    """Grayscale [0, 1] image (side, side) ⇄ packed FLUX latent (B, N_img, 4·C) through an AutoencoderKL."""

    def __init__(self, vae, vae_scale_factor: int):
        self.vae = vae
        self.scale = vae_scale_factor
        self.shift = vae.config.shift_factor or 0.0
        self.scaling = vae.config.scaling_factor

    def token_grid(self, side: int) -> tuple[int, int]:
        cell = self.scale * 2  # VAE downsampling × 2×2 packing
        if side % cell:
            raise ValueError(f"model side {side} must be a multiple of {cell}")
        return side // cell, side // cell

    @torch.no_grad()
    def encode(self, image01: np.ndarray, device, dtype) -> torch.Tensor:
        from diffusers import FluxPipeline

        x = torch.from_numpy(np.ascontiguousarray(image01)).to(device=device, dtype=self.vae.dtype)
        x = (x * 2 - 1)[None, None].repeat(1, 3, 1, 1)  # (1, 3, side, side) in [-1, 1]
        latent = self.vae.encode(x).latent_dist.mode()  # (1, C, side/s, side/s)
        latent = (latent - self.shift) * self.scaling
        _, c, h, w = latent.shape
        return FluxPipeline._pack_latents(latent, 1, c, h, w).to(dtype)  # (1, N_img, 4C)

    @torch.no_grad()
    def decode(self, packed: torch.Tensor, side: int) -> np.ndarray:
        from diffusers import FluxPipeline

        latent = FluxPipeline._unpack_latents(packed, side, side, self.scale)  # (B, C, side/s, side/s)
        latent = latent.to(self.vae.dtype) / self.scaling + self.shift
        image = self.vae.decode(latent).sample  # (B, 3, side, side) in ≈[-1, 1]
        image01 = ((image.float().mean(dim=1) + 1) / 2).clamp(0, 1)  # (B, side, side) display range
        return image01.cpu().numpy().astype(np.float32)


@dataclass
class DualPathEditor:
    """The method, independent of how the components were loaded (FLUX.1-dev, the embedded model, tiny tests)."""

    transformer: Any
    codec: FluxLatentCodec
    encode_text: TextEncoder
    scheduler_config: dict
    strength_mlp: StrengthMLP | None = None
    guidance_scale: float | None = 3.5  # None for transformers without guidance embedding
    model_side: int = 256
    inversion_cache_size: int = 8  # K seeds and the GBCA-off comparison reuse one inversion

    def __post_init__(self) -> None:
        self._inversions: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    @property
    def num_layers(self) -> int:
        return len(attention_layers(self.transformer))

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.transformer.parameters() if p.is_floating_point()).dtype

    def run(
        self,
        request: GenerationRequest,
        vital_layers: tuple[int, ...],
        steps: int,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Invert then dual-path denoise; returns arrays, captured maps and timings (the engine adds provenance)."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        image01, frame = _framed(request, self.model_side)
        check_inside(request.points, frame.original_size)
        points_model = frame.points_to_model(request.points)
        grid = self.codec.token_grid(self.model_side)
        prior_map = gaussian_prior(points_model, (self.model_side, self.model_side), grid, request.sigma_ratio)
        vital = check_layers("vital layers", vital_layers, self.num_layers)
        capture = check_layers(
            "capture layers", vital if request.capture_layers is None else request.capture_layers, self.num_layers
        )
        device, dtype = self.device, self.dtype
        timings["prepare"] = time.perf_counter() - started

        t0 = time.perf_counter()
        x0 = self.codec.encode(image01, device, dtype)  # (1, N_img, C)
        embeds, pooled = self.encode_text([request.source_text, request.progression_text])  # (2, T, J), (2, P)
        embeds, pooled = embeds.to(device, dtype), pooled.to(device, dtype)
        timings["encode"] = time.perf_counter() - t0

        sigmas = flux_sigmas(steps, x0.shape[1], self.scheduler_config)
        img_ids = _image_ids(grid, device, dtype)
        txt_ids = torch.zeros(embeds.shape[1], 3, device=device, dtype=dtype)
        check = _step_hook(progress, cancel)

        t0 = time.perf_counter()
        key = (hashlib.sha1(image01.tobytes()).hexdigest(), request.source_text, tuple(sigmas))
        noise = self._inversions.get(key)
        if noise is None:
            with torch.no_grad():
                source_velocity = self._velocity(embeds[:1], pooled[:1], img_ids, txt_ids)
                noise = invert(source_velocity, x0, sigmas, callback=check("invert"))  # (1, N_img, C), eq. 5.8
            self._remember(key, noise)
        elif progress is not None:
            progress("invert", steps, steps)  # reused from an earlier request with the same image and prompt
        noise = _mix_seed_noise(noise, request.noise_mix, request.seed)
        timings["invert"] = time.perf_counter() - t0

        state = GBCAState(
            prior=torch.from_numpy(prior_map.reshape(-1)) if request.points else None,  # (N_img,)
            strength=self._strength(request.bias_strength),
            bias_layers=vital,
            inject_layers=vital if request.inject else frozenset(),
            capture_layers=capture,
            dual=True,
        )
        strengths: list[float] = []
        t0 = time.perf_counter()
        with torch.no_grad(), gbca_installed(self.transformer, state):
            dual_velocity = self._velocity(embeds, pooled, img_ids, txt_ids, state, strengths)
            both = denoise(dual_velocity, noise.repeat(2, 1, 1), sigmas, callback=check("denoise"))  # (2, N, C)
        timings["denoise"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        decoded = self.codec.decode(both, self.model_side)  # (2, side, side)
        timings["decode"] = time.perf_counter() - t0
        layers = _layer_attention(state, grid, points_model, self.model_side, request)
        timings["total"] = time.perf_counter() - started
        return {
            "followup": decoded[1],
            "source_reconstruction": decoded[0],
            "prior_image": image01,
            "prior_map": prior_map,
            "frame": frame,
            "layers": layers,
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
            "sigmas": sigmas,
            "strength_per_step": strengths,
            "vital_layers": sorted(vital),
            "capture_layers": sorted(capture),
        }

    def _remember(self, key: tuple, noise: torch.Tensor) -> None:
        self._inversions[key] = noise
        while len(self._inversions) > self.inversion_cache_size:
            self._inversions.popitem(last=False)

    def _strength(self, bias_strength: float | None):
        """A fixed override (0 = GBCA off), else the trained s(τ) (init 0.01 when no weights are loaded)."""
        if bias_strength is not None:
            return float(bias_strength)
        mlp = self.strength_mlp or StrengthMLP()
        mlp = mlp.to(self.device)
        return lambda tau: mlp(tau.float())

    def _velocity(self, embeds, pooled, img_ids, txt_ids, state: GBCAState | None = None, strengths=None):
        rows = embeds.shape[0]
        guidance = None
        if self.guidance_scale is not None:
            guidance = torch.full((rows,), self.guidance_scale, device=embeds.device, dtype=embeds.dtype)

        def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
            timestep = torch.full((rows,), sigma, device=x.device, dtype=x.dtype)
            out = self.transformer(
                hidden_states=x,
                encoder_hidden_states=embeds,
                pooled_projections=pooled,
                timestep=timestep,
                img_ids=img_ids,
                txt_ids=txt_ids,
                guidance=guidance,
                return_dict=False,
            )[0]
            if state is not None and strengths is not None:
                strengths.append(state.edit_strength())
            return out

        return velocity


def _framed(request: GenerationRequest, side: int) -> tuple[np.ndarray, SquareFrame]:
    image = request.image
    if hasattr(image, "framed"):
        return image.framed(side, request.frame_mode)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"image must be a LoadedImage or an (H, W) array, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ValueError(f"image array must hold finite values in [0, 1], got [{array.min()}, {array.max()}]")
    frame = SquareFrame.fit((array.shape[1], array.shape[0]), side, request.frame_mode)
    return frame.apply(array), frame


def _image_ids(grid: tuple[int, int], device, dtype) -> torch.Tensor:
    from diffusers import FluxPipeline

    return FluxPipeline._prepare_latent_image_ids(1, grid[0], grid[1], device, dtype)  # (N_img, 3)


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
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled(f"cancelled during {phase} at step {step} of {total}")
            if not torch.isfinite(x).all():
                raise GenerationError(f"the model produced non-finite values during {phase} at step {step}")
            if progress is not None:
                progress(phase, step, total)

        return callback

    return for_phase


def _layer_attention(
    state: GBCAState, grid: tuple[int, int], points_model: list[LesionPoint], side: int, request: GenerationRequest
) -> list[LayerAttention]:
    layers = []
    for layer in sorted(state.captures):
        per_step = [m.numpy().reshape(grid) for m in state.captures[layer]]  # [(h, w)] per step
        heatmap = np.mean(per_step, axis=0)
        heatmap = heatmap / heatmap.sum()
        iou = attn_iou(heatmap, points_model, (side, side), request.sigma_ratio) if points_model else None
        layers.append(
            LayerAttention(
                layer=layer,
                heatmap=heatmap.astype(np.float32),
                cbi=cbi(heatmap),
                ear=ear(heatmap),
                attn_iou=iou,
                text_mass=float(np.mean(state.text_mass[layer])),
                per_step=per_step if request.capture_per_step else None,
            )
        )
    return layers


def package_versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {
        "legend_demo": __version__,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
