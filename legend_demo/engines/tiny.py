"""The "tiny-random" engine: LeGend-Diffusion on tiny random FLUX components, for tests and benchmarks only.

Its output is noise (untrained weights); it is listed only when LEGEND_ENABLE_TEST_ENGINE=1.
"""
from __future__ import annotations

from ..core.tiny import TINY_SIDE, tiny_flux_pipeline
from .flux import LeGendDiffusionEngine

LABEL = "Tiny random FLUX (tests only: untrained, output is noise)"  # shown in the engine list (registry) and on every result


class TinyRandomEngine(LeGendDiffusionEngine):
    name = "tiny-random"
    label = LABEL


def availability() -> tuple[bool, str]:
    return True, "random weights built in code (tests only; output is noise)"


def load(num_layers: int = 2, num_single_layers: int = 3, seed: int = 0, **options) -> TinyRandomEngine:
    pipe = tiny_flux_pipeline(num_layers, num_single_layers, seed)
    options.setdefault("default_steps", 8)
    options.setdefault("max_sequence_length", 64)
    return TinyRandomEngine(
        pipe, checkpoint=f"tiny-random (seed {seed}, {num_layers}+{num_single_layers} blocks)", model_side=TINY_SIDE, **options
    )
