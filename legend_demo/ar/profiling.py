"""Layer-wise attention profiling under teacher forcing (thesis §4.2.1, Figs. 4.2 and 4.5).

One forward pass over [X_A; X_D; X_B] with the ground-truth X_B; at every profiled layer, the softmax attention
of the X_B queries (the positions that predict X_B's visual tokens, so query n sees X_A, X_D and X_{B,<n}) is
averaged over heads and queries, its X_A visual-key part laid on the token grid and renormalised to sum to 1
(eqs. 4.2–4.4 with probabilities instead of logits, see capture.py), then CBI / EAR / Attn-IoU (eqs. 4.5–4.7).
The same pass with GBCA on and off gives the two curves of Fig. 4.5.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from ..method.metrics import LayerAttention
from ..core.points import LesionPoint
from ..method.strength import StrengthFn
from .attention import ARGBCAState
from .backbone import ARBackbone
from .sequence import make_batch, teacher_forcing_row

METRICS = ("cbi", "ear", "attn_iou", "text_mass")


def layer_attention(
    state: ARGBCAState, grid: tuple[int, int], points_model: list[LesionPoint], side: int, sigma_ratio: float,
    per_call: bool = False,
) -> list[LayerAttention]:
    """The captured layers as LayerAttention maps (h, w) summing to 1, with CBI / EAR / Attn-IoU and text share."""
    layers = []
    for layer in sorted(state.mass):
        if state.counts.get(layer, 0) == 0:
            continue
        mass = state.mass[layer].numpy()
        heatmap = (mass / mass.sum()).reshape(grid).astype(np.float32)  # (h, w)
        calls = [m.numpy().reshape(grid) / max(float(m.sum()), 1e-12) for m in state.calls.get(layer, [])] if per_call else None
        layers.append(LayerAttention.measure(layer, heatmap, state.text_mass[layer] / state.counts[layer], points_model,
                                             side, sigma_ratio, calls))
    return layers


@torch.no_grad()
def teacher_forcing_attention(
    backbone: ARBackbone,
    codes_a: torch.Tensor,
    codes_b: torch.Tensor,
    text: str,
    grid: tuple[int, int],
    prior: torch.Tensor | None,
    strength: float | StrengthFn,
    bias_layers: Iterable[int],
    capture_layers: Iterable[int],
) -> ARGBCAState:
    """One teacher-forcing pass; returns the state holding the per-layer attention of X_B queries (eq. 4.3)."""
    ids, layout = teacher_forcing_row(backbone.vocab, backbone.encode_text, codes_a, codes_b, text, grid)
    backbone.check_length(ids.numel())
    batch = make_batch([ids], [layout], backbone.vocab.pad)
    state = ARGBCAState.for_batch(batch, ids.numel(), backbone.num_layers, prior, strength, bias_layers, capture_layers)
    queries = torch.zeros((1, ids.numel()), dtype=torch.bool)
    queries[0, layout.b_visual - 1] = True  # the position before X_B[n] predicts it and sees X_{B,<n} only
    state.query_mask = queries
    backbone.forward(batch.ids, state=state, logits_to_keep=1)
    return state


@dataclass
class PairProfile:
    pair: str
    gbca: bool
    layers: list[LayerAttention]


@dataclass
class ProfileRun:
    """Per-pair profiles and their per-layer means (the table and the curves)."""

    pairs: list[PairProfile]
    bias_layers: list[int]
    strengths: dict[int, float]  # s_ℓ used in the GBCA pass
    seconds_per_pass: float

    def table(self) -> list[dict]:
        """One row per (layer, GBCA off/on): the mean of each metric over the pairs that have it."""
        rows = []
        for gbca in (False, True):
            runs = [p for p in self.pairs if p.gbca == gbca]
            layers = sorted({a.layer for p in runs for a in p.layers})
            for layer in layers:
                maps = [a for p in runs for a in p.layers if a.layer == layer]
                row = {"layer": layer, "gbca": "on" if gbca else "off", "pairs": len(maps)}
                for name in METRICS:
                    values = [getattr(a, name) for a in maps if getattr(a, name) is not None]
                    row[name] = float(np.mean(values)) if values else None
                rows.append(row)
        return rows

    def mean_maps(self, gbca: bool) -> dict[int, np.ndarray]:
        """layer → (h, w) mean heatmap over the pairs."""
        maps: dict[int, list[np.ndarray]] = {}
        for p in self.pairs:
            if p.gbca == gbca:
                for a in p.layers:
                    maps.setdefault(a.layer, []).append(a.heatmap)
        return {layer: np.mean(m, axis=0) for layer, m in sorted(maps.items())}


def profile_pairs(
    backbone: ARBackbone,
    pairs,  # training.data.PairSet at the engine's model side
    grid: tuple[int, int],
    priors: list[np.ndarray],  # (h, w) per pair (zeros when a pair has no points)
    strength: float | StrengthFn,
    bias_layers: Iterable[int],
    capture_layers: Iterable[int],
    sigma_ratio: float,
    progress: Callable[[int, int], None] | None = None,
) -> ProfileRun:
    """Teacher-forcing profiles of every pair, GBCA off (s = 0) and on."""
    bias_layers, capture_layers = sorted(bias_layers), sorted(capture_layers)
    results, passes, started = [], 0, time.perf_counter()
    strengths: dict[int, float] = {}
    codes = backbone.codec.encode(torch.cat([pairs.reference, pairs.follow_up]))  # (2P, N_A)
    count = len(pairs)
    for i in range(count):
        prior = torch.from_numpy(priors[i].reshape(-1)) if priors[i].any() else None
        for gbca in (False, True):
            state = teacher_forcing_attention(backbone, codes[i], codes[count + i], pairs.progression_texts[i], grid,
                                              prior, strength if gbca else 0.0, bias_layers, capture_layers)
            if gbca:
                strengths = state.strengths()
            layers = layer_attention(state, grid, pairs.points[i], pairs.side, sigma_ratio)
            results.append(PairProfile(pairs.ids[i], gbca, layers))
            passes += 1
        if progress is not None:
            progress(i + 1, count)
    return ProfileRun(results, bias_layers, strengths, (time.perf_counter() - started) / max(passes, 1))


def plot_profile(run: ProfileRun, path, title: str = "LeGend AR: layer-wise attention (teacher forcing)") -> None:
    """Attn-IoU, CBI and EAR per layer, GBCA off and on, GBCA layers shaded (thesis Fig. 4.5)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = run.table()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    for ax, (name, label) in zip(axes, (("attn_iou", "Attn-IoU ↑"), ("cbi", "CBI ↓"), ("ear", "EAR ↓"))):
        for gbca, style in (("off", "o--"), ("on", "s-")):
            points = [(r["layer"], r[name]) for r in rows if r["gbca"] == gbca and r[name] is not None]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, style, ms=3.5, label=f"GBCA {gbca}")
        for layer in run.bias_layers:
            ax.axvspan(layer - 0.5, layer + 0.5, color="tab:orange", alpha=0.12, lw=0)
        ax.set_xlabel("decoder layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_maps(run: ProfileRun, path, layers: Iterable[int] | None = None) -> None:
    """Mean heatmaps per layer, GBCA off (top) and on (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    off, on = run.mean_maps(False), run.mean_maps(True)
    layers = sorted(layers if layers is not None else off)
    fig, axes = plt.subplots(2, len(layers), figsize=(1.6 * len(layers) + 1, 3.6), squeeze=False, constrained_layout=True)
    for col, layer in enumerate(layers):
        for row, (maps, name) in enumerate(((off, "off"), (on, "on"))):
            ax = axes[row, col]
            ax.imshow(maps[layer], cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"L{layer} {name}", fontsize=7)
    fig.savefig(path, dpi=120)
    plt.close(fig)
