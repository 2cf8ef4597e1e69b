"""The learned GBCA strength s(τ) (thesis §5.2.2–5.2.3): a 2-layer MLP of the flow time τ ∈ [0, 1].

s(τ) = s_max · tanh(softplus(z(τ)) / s_max): positive, bounded above by s_max, ≈ softplus(z) when small.
At initialisation the last layer's weights are zero and its bias is set so that s(τ) = 0.01 for every τ.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

S_INIT = 0.01
S_MAX = 10.0  # the documented maximum bias strength (also the UI slider's upper end)

# The MLP's input → s: the flow time τ (B,) → s(τ) (B,) for diffusion, an AR layer's relative depth (1,) → s_ℓ (1,).
StrengthFn = Callable[[torch.Tensor], torch.Tensor]


class StrengthMLP(nn.Module):
    """τ (B,) → s(τ) (B,), bounded in (0, s_max)."""

    def __init__(self, hidden: int = 32, s_max: float = S_MAX, s_init: float = S_INIT):
        super().__init__()
        if not (0 < s_init < s_max):
            raise ValueError(f"s_init={s_init} must lie in (0, s_max={s_max})")
        self.hidden, self.s_max = hidden, float(s_max)
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.fc2.weight.zero_()
            # softplus(b) = s_max · atanh(s_init / s_max)  ⇒  s(τ) = s_init exactly
            target = s_max * math.atanh(s_init / s_max)
            self.fc2.bias.fill_(math.log(math.expm1(target)))

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        tau = tau.reshape(-1, 1).to(self.fc1.weight.dtype)  # (B, 1)
        z = self.fc2(F.silu(self.fc1(tau)))  # (B, 1)
        return (self.s_max * torch.tanh(F.softplus(z) / self.s_max)).reshape(-1)  # (B,)

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": "legend-gbca-strength", "hidden": str(self.hidden), "s_max": str(self.s_max)}
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "StrengthMLP":
        """Load weights written by save(); raise ValueError for a file that is not a GBCA strength file."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"GBCA weights not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None
        if meta.get("format") != "legend-gbca-strength":
            raise ValueError(f"{path} is not a GBCA strength file (metadata {json.dumps(meta)})")
        module = cls(hidden=int(meta["hidden"]), s_max=float(meta["s_max"]))
        module.load_state_dict(tensors)
        return module.eval()


def request_strength(bias_strength: float | None, mlp: StrengthMLP | None, device) -> float | StrengthFn:
    """What a request's bias strength means: a fixed value (0 = GBCA off), or — None — the trained MLP (the
    untrained init s = 0.01 everywhere when no weights are loaded), on `device`, as a StrengthFn."""
    if bias_strength is not None:
        return float(bias_strength)
    module = (mlp or StrengthMLP()).to(device).float().eval()
    return lambda x: module(x.float())


def strength_mode(bias_strength: float | None, mlp: StrengthMLP | None, symbol: str = "s(tau)",
                  learned_note: str = "") -> str:
    """How the strength was set, for provenance: "off", "fixed", "learned <symbol>…" or "untrained <symbol> (init 0.01)"."""
    if bias_strength == 0:
        return "off"
    if bias_strength is not None:
        return "fixed"
    return f"learned {symbol}{learned_note}" if mlp is not None else f"untrained {symbol} (init 0.01)"
