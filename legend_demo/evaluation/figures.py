"""Difference-map figures for held-out cases: look at what the engine draws, not only at the numbers.

One row per case: the prior with its lesion points | the generated follow-up (the film) | generated − prior |
the same with GBCA off (s = 0) | with the points mirrored | the real follow-up − prior. All difference panels share
one symmetric scale (±SPAN, red brighter, blue darker), so a faint change looks faint.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engines.base import Engine, GenerationRequest
from .cases import EvalCase
from .probes import mirrored_points

SPAN = 0.15  # ± display range of every difference panel
COLUMNS = ("prior + points", "generated follow-up (SYNTHETIC)", "generated − prior", "GBCA off (s = 0) − prior",
           "points mirrored − prior", "real follow-up − prior")


def case_figure(engine: Engine, cases: list[EvalCase], path: str | Path, steps: int | None = None, seed: int = 0,
                bias_strength: float | None = None) -> Path:
    """Render the rows for `cases` (those with a change) into a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    chosen = [c for c in cases if c.sign != 0]
    if not chosen:
        raise ValueError("no case with a change to show")
    fig = Figure(figsize=(2.2 * len(COLUMNS), 2.4 * len(chosen)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(chosen), len(COLUMNS)))
    for row, case in zip(axes, chosen):
        films = {key: _film(engine, case, steps, seed, bias, points)
                 for key, bias, points in (("full", bias_strength, case.points), ("off", 0.0, case.points),
                                           ("mirrored", bias_strength, mirrored_points(case.points, case.reference.shape[1])))}
        _show(row[0], case.reference, f"{case.change_type}, {case.direction}", case.points)
        _show(row[1], films["full"], "SYNTHETIC")
        for ax, image in zip(row[2:5], (films["full"], films["off"], films["mirrored"])):
            _difference(ax, image - case.reference, case)
        _difference(row[5], case.follow_up - case.reference, case)
    for ax, title in zip(axes[0], COLUMNS):
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"{engine.checkpoint} — held-out SYNTHETIC cases; differences on ±{SPAN:g}; "
                 "green outline: true lesion mask", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _film(engine: Engine, case: EvalCase, steps, seed, bias, points) -> np.ndarray:
    request = GenerationRequest(image=case.reference, progression_text=case.progression_text,
                                source_text=case.source_text, points=points, bias_strength=bias, steps=steps,
                                seed=seed, capture_layers=())
    return engine.generate(request).film.display


def _show(ax, image: np.ndarray, label: str, points=()) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    for p in points:
        ax.plot(p.x, p.y, "o", markersize=5, markerfacecolor="none", markeredgecolor="red")
    ax.set_xlabel(label, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _difference(ax, diff: np.ndarray, case: EvalCase) -> None:
    ax.imshow(diff, cmap="bwr", vmin=-SPAN, vmax=SPAN)
    ax.contour(case.mask.astype(float), levels=[0.5], colors="lime", linewidths=0.6)
    inside = float(diff[case.mask].mean()) * case.sign if case.mask.any() else float("nan")
    ax.set_xlabel(f"signed change in mask {inside:+.3f}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
