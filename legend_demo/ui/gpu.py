"""`gpu_task(duration)`: Hugging Face ZeroGPU's `spaces.GPU` when the package is installed, else a no-op; and
`generation_seconds`, the GPU time one Generate click asks ZeroGPU for, from its engine, steps, samples and film.

Off ZeroGPU `spaces.GPU` returns the function unchanged, so the Space and local runs share one path. On ZeroGPU
the duration is a reservation: a call that outlives it is stopped, and a visitor whose remaining daily quota is
below it is refused, so it should follow the request instead of being one fixed number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable)
Duration = int | Callable[..., int]

try:  # `spaces` must be imported before torch on ZeroGPU; app.py imports it first, this only reuses it.
    import spaces as _spaces
except ImportError:  # pragma: no cover - exercised only where the package is absent
    _spaces = None


@dataclass(frozen=True)
class GpuCost:
    """What one follow-up costs on the Space's GPU (ZeroGPU `large`: half an RTX Pro 6000 Blackwell, 48 GB).

    Estimates, not measurements: one transformer forward of one row of FLUX.1-dev at 256² is ≈ 18 TFLOP
    (12B parameters × 768 tokens × 2), i.e. ≈ 0.1 s at a sustained ≈ 200 TFLOP/s with NF4's dequantisation;
    `benchmarks/gpu_check.py` measures the phases on a GPU (README, "Hugging Face Space").
    """

    fixed_s: float  # per follow-up: text encoding, VAE / VQ tokenizer, capture, transfers
    unit_s: float  # one transformer forward of one row (diffusion), or one decoding step of both rows (AR)
    units: Callable[[int, int], int]  # (steps asked for or 0, follow-ups in the click) → forwards


def _dual_path(default_steps: int, inversion: bool) -> Callable[[int, int], int]:
    """Two rows per denoising step for every follow-up, plus one inversion shared by the click (it is cached)."""

    def units(steps: int, runs: int) -> int:
        steps = steps or default_steps
        return (steps if inversion else 0) + runs * 2 * steps

    return units


COSTS: dict[str, GpuCost] = {
    "legend-diffusion": GpuCost(fixed_s=4.0, unit_s=0.12, units=_dual_path(28, inversion=True)),
    "legend-ar": GpuCost(fixed_s=4.0, unit_s=0.025, units=lambda _steps, runs: runs * 32 * 33),  # 32×33 tokens
    "embedded": GpuCost(fixed_s=1.0, unit_s=0.05, units=_dual_path(20, inversion=False)),  # runs on the CPU
}
UNKNOWN_ENGINE = GpuCost(fixed_s=5.0, unit_s=0.15, units=_dual_path(28, inversion=True))
FILM_S_PER_MEGAPIXEL = 0.1  # compositing the change onto the film and writing its PNG/DICOM, per follow-up
MARGIN = 1.5  # the reservation over the estimate: a call that outlives its reservation is stopped
MIN_SECONDS, MAX_SECONDS = 30, 600


def generation_seconds(click: Any, *_: Any, **__: Any) -> int:
    """ZeroGPU reservation for `run_generation(click, ...)` (it takes the decorated function's arguments):
    MARGIN × (follow-ups × fixed + forwards × unit + film compositing), within [MIN_SECONDS, MAX_SECONDS]."""
    cost = COSTS.get(_engine_name(click), UNKNOWN_ENGINE)
    runs = max(1, int(click.num_samples)) + (1 if click.compare_off else 0)
    width, height = getattr(click.request.image, "original_size", None) or (2048, 2500)
    film_s = runs * FILM_S_PER_MEGAPIXEL * width * height / 1e6
    seconds = MARGIN * (runs * cost.fixed_s + cost.units(int(click.request.steps or 0), runs) * cost.unit_s + film_s)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, math.ceil(seconds))))


def _engine_name(click: Any) -> str | None:
    """The engine the click will use, without loading it (the default engine when none was picked)."""
    if click.engine:
        return click.engine
    try:
        from ..engines.registry import default_engine_name

        return default_engine_name()
    except Exception:  # noqa: BLE001 — a reservation estimate must never fail the click
        return None


def gpu_task(duration: Duration) -> Callable[[F], F]:
    """Decorator: ask ZeroGPU for a GPU for `duration` seconds per call — a number, or a function of the call's
    arguments (ZeroGPU's dynamic duration) — and a no-op elsewhere."""

    def wrap(fn: F) -> F:
        if _spaces is None:
            return fn
        return _spaces.GPU(duration=duration)(fn)

    return wrap
