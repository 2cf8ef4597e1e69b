"""Rectified-flow samplers as pure functions (k-diffusion style, with a callback for introspection).

Flow convention (FLUX): x_σ = (1 − σ)·x₀ + σ·ε and the model predicts the velocity v = ε − x₀, so
dx/dσ = v. Sigmas run from 1 (noise) to 0 (image) when denoising.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]  # (x (B, N, C), σ) → v (B, N, C)
StepCallback = Callable[[int, int, float, torch.Tensor], None]  # (step, total, σ, x) after each step
Projection = Callable[[torch.Tensor], torch.Tensor]  # x → x after each step (e.g. keep-region blending)


def _checked_sigmas(sigmas: Sequence[float], descending: bool) -> list[float]:
    values = [float(s) for s in sigmas]
    if len(values) < 2:
        raise ValueError(f"need at least two sigmas, got {values}")
    pairs = zip(values, values[1:])
    if not all((a > b) if descending else (a < b) for a, b in pairs):
        order = "descending" if descending else "ascending"
        raise ValueError(f"sigmas must be strictly {order}: {values}")
    return values


def euler(velocity: VelocityFn, x: torch.Tensor, sigmas: Sequence[float], callback: StepCallback | None = None,
          project: Projection | None = None) -> torch.Tensor:
    """Euler integration of dx/dσ = v along the given sigmas (either direction): x ← x + (σ_next − σ)·v(x, σ).

    `project`, when given, maps x after every step (keep-region blending of RadEdit / Blended Latent Diffusion).
    """
    total = len(sigmas) - 1
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        x = x + (sigma_next - sigma) * velocity(x, sigma)
        if project is not None:
            x = project(x)
        if callback is not None:
            callback(i + 1, total, sigma_next, x)
    return x


def denoise(velocity: VelocityFn, noise: torch.Tensor, sigmas: Sequence[float], callback: StepCallback | None = None,
            project: Projection | None = None) -> torch.Tensor:
    """Generate: integrate from the first (largest) sigma down to the last (usually 0)."""
    return euler(velocity, noise, _checked_sigmas(sigmas, descending=True), callback, project)


def invert(velocity: VelocityFn, x0: torch.Tensor, sigmas: Sequence[float], callback: StepCallback | None = None) -> torch.Tensor:
    """Rectified-flow inversion (inverse Euler) of a clean latent along the *descending* sampling sigmas, reversed.

    Eq. 5.8: the result z_K is the shared start of the source and edit paths.
    """
    ascending = list(reversed(_checked_sigmas(sigmas, descending=True)))
    return euler(velocity, x0, ascending, callback)


def flux_sigmas(steps: int, image_seq_len: int, scheduler_config: dict) -> list[float]:
    """The sampling sigmas FLUX uses for `steps` steps (linear in 1 → 1/steps, resolution-shifted), ending at 0."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    mu = calculate_shift(
        image_seq_len,
        scheduler.config.get("base_image_seq_len", 256),
        scheduler.config.get("max_image_seq_len", 4096),
        scheduler.config.get("base_shift", 0.5),
        scheduler.config.get("max_shift", 1.15),
    )
    kwargs = {"mu": mu} if scheduler.config.get("use_dynamic_shifting", False) else {}
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps), **kwargs)
    return [float(s) for s in scheduler.sigmas]
