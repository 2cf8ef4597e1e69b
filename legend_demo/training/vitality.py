"""Vitality analysis (thesis §5.2.1, Stable Flow): which blocks carry the generated anatomy's structure.

For N seeded noises z_i and prompts p_i drawn from the data set's descriptions, generate I_i with the full
model and I_i^(l) with block l bypassed (a residual bypass: the block returns its inputs unchanged), then
v(l) = 1 − (1/N) Σ_i cos(Φ(I_i), Φ(I_i^(l)))   (eqs. 5.1–5.2),   V = {l : v(l) ≥ τ_vit}   (eq. 5.3),
or the top-k layers by v. Φ is the offline structure descriptor of features.py (DINOv2 is not available offline).
Layers are numbered as the GBCA processors number them: double-stream blocks 0…D−1, then single-stream blocks.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch

from ..method.sampling import denoise, flux_sigmas
from . import features
from .backbone import Backbone


@dataclass(frozen=True)
class VitalityOptions:
    samples: int = 8  # N
    steps: int = 10  # sampling steps per image
    seed: int = 0
    tau: float | None = 0.1  # τ_vit (eq. 5.3)
    top_k: int | None = None  # keep the k highest instead (or among those ≥ τ when both are given)

    def check(self) -> None:
        if self.samples < 1 or self.steps < 1:
            raise ValueError(f"samples={self.samples} and steps={self.steps} must be ≥ 1")
        if self.tau is None and self.top_k is None:
            raise ValueError("give a vitality threshold tau or a top_k")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k={self.top_k} must be ≥ 1")


def blocks(transformer) -> list[torch.nn.Module]:
    """The transformer blocks in global layer order (double-stream, then single-stream)."""
    return list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)


@contextmanager
def bypassed(transformer, layer: int) -> Iterator[None]:
    """Skip block `layer`: a forward hook returns the block's inputs (encoder_hidden_states, hidden_states) unchanged.

    Both FluxTransformerBlock and FluxSingleTransformerBlock return (encoder_hidden_states, hidden_states) and are
    called with keyword arguments (or positionally under gradient checkpointing).
    """
    every = blocks(transformer)
    if not 0 <= layer < len(every):
        raise ValueError(f"layer {layer} outside this model's layers 0–{len(every) - 1}")

    def skip(module, args, kwargs, output):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        text = kwargs["encoder_hidden_states"] if "encoder_hidden_states" in kwargs else args[1]
        return text, hidden

    handle = every[layer].register_forward_hook(skip, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def generate(backbone: Backbone, noise: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor, steps: int) -> np.ndarray:
    """Euler sampling from noise (B, N_img, C) with FLUX's sigmas → decoded images (B, side, side) in [0, 1]."""
    sigmas = flux_sigmas(steps, noise.shape[1], backbone.editor.scheduler_config)

    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        t = torch.full((x.shape[0],), sigma, device=x.device, dtype=x.dtype)
        return backbone.velocity(x, t, embeds, pooled)

    return backbone.editor.codec.decode(denoise(velocity, noise, sigmas), backbone.side)


def vitality_scores(backbone: Backbone, prompts: list[str], options: VitalityOptions) -> dict:
    """Every layer's v(l) and the selected vital set; the dict is what `train vitality` writes as JSON."""
    options.check()
    if not prompts:
        raise ValueError("the vitality analysis needs at least one prompt")
    started = time.perf_counter()
    backbone.transformer.eval()
    chosen = random.Random(options.seed).choices(sorted(set(prompts)), k=options.samples)
    embeds, pooled = backbone.encode_text(chosen)  # (N, T, J), (N, P)
    noise = _noise(backbone, options)  # (N, N_img, C)
    reference = features.structure_features(generate(backbone, noise, embeds, pooled, options.steps))  # (N, D)
    scores, per_sample = {}, {}
    for layer in range(backbone.num_layers):
        with bypassed(backbone.transformer, layer):
            skipped = features.structure_features(generate(backbone, noise, embeds, pooled, options.steps))
        similarity = features.cosine(reference, skipped)  # (N,)
        scores[layer] = float(1.0 - similarity.mean())  # eq. 5.2
        per_sample[layer] = [round(float(s), 5) for s in similarity]
    selected = select_vital(scores, options.tau, options.top_k)
    return {
        "scores": {str(k): round(v, 6) for k, v in scores.items()},
        "similarity_per_sample": {str(k): v for k, v in per_sample.items()},
        "selected": selected,
        "rule": {"tau": options.tau, "top_k": options.top_k},
        "feature_extractor": features.NAME,
        "prompts": chosen,
        "options": asdict(options),
        "num_layers": backbone.num_layers,
        "seconds": round(time.perf_counter() - started, 1),
    }


def select_vital(scores: dict[int, float], tau: float | None = None, top_k: int | None = None) -> list[int]:
    """Eq. 5.3: {l : v(l) ≥ τ}; with top_k, the k highest-scoring layers (among those ≥ τ when τ is given too)."""
    if tau is None and top_k is None:
        raise ValueError("give a vitality threshold tau or a top_k")
    candidates = [layer for layer, v in scores.items() if tau is None or v >= tau]
    if top_k is not None:
        candidates = sorted(candidates, key=lambda layer: (-scores[layer], layer))[:top_k]
    if not candidates:
        best = max(scores.values()) if scores else float("nan")
        raise ValueError(f"no layer reaches the vitality threshold tau={tau} (highest v(l) = {best:.4f}); lower --tau or use --top-k")
    return sorted(int(layer) for layer in candidates)


def _noise(backbone: Backbone, options: VitalityOptions) -> torch.Tensor:
    h, w = backbone.token_grid()
    channels = backbone.encode_images(torch.zeros(1, backbone.side, backbone.side)).shape[-1]
    generator = torch.Generator().manual_seed(options.seed)
    noise = torch.randn(options.samples, h * w, channels, generator=generator)  # z_i ~ N(0, I)
    return noise.to(device=backbone.editor.device, dtype=backbone.editor.dtype)
