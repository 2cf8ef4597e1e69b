"""Exponential moving average of weights for the fully trained embedded model (the checkpoints hold the EMA)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class EMA:
    """θ̄ ← d·θ̄ + (1 − d)·θ with the warm-up d_k = min(decay, (1 + k) / (10 + k)) (as diffusers' EMAModel)."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay {decay} must lie in (0, 1)")
        self.params, self.decay, self.updates = list(params), decay, 0
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily load the averaged weights into the live parameters (for saving and validation)."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self.params], self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.data for p in self.params], saved)
