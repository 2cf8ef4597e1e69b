"""Pictures and plots for results: attention heatmaps over the image, difference and std maps, metric plots.

Scales are fixed per result, never per picture: every difference map of one result shares one symmetric scale
(`difference_span`), every attention map one [0, max] scale across layers and GBCA on/off (`attention_peak`),
and each map carries a colour bar with its unit below the picture (above the label band).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..engines.base import LayerAttention
from ..core.overlay import colorize

METRICS = (("cbi", "CBI ↓ (corner share)"), ("ear", "EAR ↓ (edge share)"), ("attn_iou", "Attn-IoU ↑ (inside Ω)"))


DISPLAY_MIN_SIDE = 256
FILM_DISPLAY_MAX_SIDE = 1024  # films are shown at most this large (downloads keep the full resolution)
MIN_DIFFERENCE_SPAN = 0.10  # a difference scale never saturates below 10 % of the display range
DIFFERENCE_PERCENTILE = 99.9  # the shared scale reaches this percentile of |difference| (a few hot pixels aside)
COLORBAR_HEIGHT = 14


def gray_rgb(image01: np.ndarray) -> np.ndarray:
    """(H, W) [0, 1] → (H, W, 3) uint8."""
    gray = (np.clip(image01, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.dstack([gray] * 3)


def for_display(rgb: np.ndarray, min_side: int = DISPLAY_MIN_SIDE) -> np.ndarray:
    """Enlarge small model outputs (pixel-exact, nearest) so they are visible; larger ones unchanged."""
    height, width = rgb.shape[:2]
    factor = int(np.ceil(min_side / min(height, width)))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


def shrink(image: np.ndarray, max_side: int = FILM_DISPLAY_MAX_SIDE) -> np.ndarray:
    """(H, W[, 3]) → at most max_side on the long side (area averaging); smaller images unchanged."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def labelled(rgb: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """(H, W, 3) uint8 with the label band added below it (never over the image): (H + band, W, 3)."""
    from ..core.export import label_band

    band = gray_rgb(label_band(rgb.shape[1], lines))
    return np.concatenate([rgb, band])


def film_view(image01: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A film (or any grayscale image) for the page: shrunk for display, enlarged if tiny, label band below."""
    return labelled(for_display(gray_rgb(shrink(image01))), lines)


def difference_map(before01: np.ndarray, after01: np.ndarray, span: float | None = None) -> np.ndarray:
    """after − before on a symmetric blue (darker) / red (brighter) scale ±span (default: its own max): RGB uint8."""
    diff = after01.astype(np.float32) - before01.astype(np.float32)
    span = float(np.abs(diff).max()) if span is None else span
    return diverging(np.clip(diff / max(span, 1e-6), -1, 1))


def diverging(d: np.ndarray) -> np.ndarray:
    """(H, W) in [-1, 1] → RGB uint8: blue (−1), white (0), red (+1)."""
    rgb = np.stack([1 - np.clip(-d, 0, 1), 1 - np.abs(d), 1 - np.clip(d, 0, 1)], axis=-1)  # white = no change
    return (rgb * 255).round().astype(np.uint8)


def difference_span(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """One symmetric scale for all the difference maps of a result: the 99.9th percentile of |after − before| over
    all of them, at least MIN_DIFFERENCE_SPAN (so a 2–3 % global shift shows pale, not saturated)."""
    values = np.concatenate([np.abs(a.astype(np.float32) - b.astype(np.float32)).ravel() for b, a in pairs])
    return max(float(np.percentile(values, DIFFERENCE_PERCENTILE)), MIN_DIFFERENCE_SPAN)


def std_map(samples: Sequence[np.ndarray], peak: float | None = None) -> np.ndarray:
    """Per-pixel standard deviation across samples on [0, peak] (default: its max; where the model is unsure): RGB."""
    std = np.std(np.stack(samples), axis=0)  # (S, S)
    peak = float(std.max()) if peak is None else peak
    return colorize(std / peak if peak > 0 else std, "inferno")


def attention_peak(*groups: Sequence[LayerAttention]) -> float:
    """The largest attention share of any token cell over every layer shown (GBCA on and off): one [0, peak] scale."""
    peaks = [float(a.heatmap.max()) for group in groups for a in group]
    return max(peaks, default=0.0)


def colorbar(width: int, lo: float, hi: float, unit: str, kind: str = "diverging", percent: bool = False) -> np.ndarray:
    """(h, width, 3) uint8: a colour bar from lo to hi (kind 'diverging', 'jet' or 'inferno') with its end and middle
    values (as percentages when `percent`) and the unit written below it (wrapped to the width)."""
    from PIL import Image, ImageDraw, ImageFont

    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :].repeat(COLORBAR_HEIGHT, axis=0)  # (h, w)
    if kind == "diverging":
        bar = diverging(2 * ramp - 1)
    else:
        bar = colorize(ramp, "inferno" if kind == "inferno" else "jet")
    font = ImageFont.load_default(size=max(10, min(18, width // 28)))
    ascent, descent = font.getmetrics()
    line = ascent + descent + 1
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap_words(unit, lambda t: probe.textlength(t, font=font) <= width - 8)
    text = Image.new("RGB", (width, line * (1 + len(lines)) + 4), (13, 13, 13))
    draw = ImageDraw.Draw(text)
    for x, value in ((0, lo), (width // 2, (lo + hi) / 2), (width, hi)):
        label = _number(value, percent, signed=kind == "diverging")
        size = draw.textlength(label, font=font)
        draw.text((min(max(x - size / 2, 2), width - size - 2), 1), label, fill=(255, 255, 255), font=font)
    for k, piece in enumerate(lines):
        draw.text((4, line * (k + 1) + 2), piece, fill=(230, 230, 230), font=font)
    return np.concatenate([bar, np.asarray(text)])


def _wrap_words(text: str, fits) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _number(value: float, percent: bool = False, signed: bool = True) -> str:
    """ASCII only (the built-in font has no minus sign): '+10%', '-0.0123', '2.3%', '0'."""
    if abs(value) <= 1e-12:
        return "0"
    spec = "+.3g" if signed else ".3g"
    return f"{100 * value:{spec}}%" if percent else f"{value:{spec}}"


def with_colorbar(rgb: np.ndarray, lo: float, hi: float, unit: str, kind: str = "diverging",
                  percent: bool = False) -> np.ndarray:
    """(H, W, 3) → (H + bar, W, 3): the picture with its colour bar below it."""
    return np.concatenate([rgb, colorbar(rgb.shape[1], lo, hi, unit, kind, percent)])


TABLE_COLUMNS = (("cbi", "CBI"), ("ear", "EAR"), ("attn_iou", "Attn-IoU"), ("text_mass", "text share"))


def metrics_table(on: Sequence[LayerAttention], off: Sequence[LayerAttention] = ()) -> tuple[list[str], list[list]]:
    """(headers, rows): layer, CBI, EAR, Attn-IoU, text share with GBCA, then the same with GBCA off — columns only
    for what was run (no GBCA-off columns without the comparison, no Attn-IoU without lesion points)."""
    off_by_layer = {a.layer: a for a in off}
    columns = [(key, name) for key, name in TABLE_COLUMNS
               if key != "attn_iou" or any(a.attn_iou is not None for a in [*on, *off])]
    headers = ["layer"] + [name for _, name in columns]
    if off:
        headers += [f"{name} (GBCA off)" for _, name in columns]
    rows = []
    for a in on:
        row = [a.layer] + [_rounded(getattr(a, key)) for key, _ in columns]
        if off:
            b = off_by_layer.get(a.layer)
            row += [_rounded(getattr(b, key)) if b else None for key, _ in columns]
        rows.append(row)
    return headers, rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def metrics_figure(on: Sequence[LayerAttention], off: Sequence[LayerAttention] = ()):
    """Matplotlib figure: CBI, EAR and Attn-IoU per layer, with GBCA (solid) and without (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    metrics = [(key, title) for key, title in METRICS
               if key != "attn_iou" or any(a.attn_iou is not None for a in [*on, *off])]
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, (key, title) in zip(axes, metrics):
        _plot_series(ax, on, key, "GBCA on", "-o")
        if off:
            _plot_series(ax, off, key, "GBCA off", "--s")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig  # the legend sits below the plots, never over a title


def _plot_series(ax, layers: Sequence[LayerAttention], key: str, label: str, style: str) -> None:
    xs = [str(a.layer) for a in layers]
    ys = [getattr(a, key) for a in layers]
    ax.plot(xs, [np.nan if y is None else y for y in ys], style, label=label, markersize=4)
