"""Pictures and plots for results: attention heatmaps over the image, difference and std maps, metric plots."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..engines.base import LayerAttention

METRICS = (("cbi", "CBI ↓ (corner share)"), ("ear", "EAR ↓ (edge share)"), ("attn_iou", "Attn-IoU ↑ (inside Ω)"))


DISPLAY_MIN_SIDE = 256
FILM_DISPLAY_MAX_SIDE = 1024  # films are shown at most this large (downloads keep the full resolution)


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
    from ..export import label_band

    band = gray_rgb(label_band(rgb.shape[1], lines))
    return np.concatenate([rgb, band])


def film_view(image01: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A film (or any grayscale image) for the page: shrunk for display, enlarged if tiny, label band below."""
    return labelled(for_display(gray_rgb(shrink(image01))), lines)


def colormap(values01: np.ndarray, cmap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """(H, W) [0, 1] → (H, W, 3) uint8 RGB."""
    scaled = (np.clip(values01, 0.0, 1.0) * 255).round().astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cmap), cv2.COLOR_BGR2RGB)


def heatmap_over(image01: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A token-grid heatmap (h, w), scaled to its own max, blended over the (S, S) image: (S, S, 3) uint8."""
    height, width = image01.shape
    peak = float(heatmap.max())
    norm = heatmap / peak if peak > 0 else np.zeros_like(heatmap)
    up = cv2.resize(norm.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)  # (S, S)
    blend = (1 - alpha) * gray_rgb(image01).astype(np.float32) + alpha * colormap(up).astype(np.float32)
    return blend.round().astype(np.uint8)


def difference_map(before01: np.ndarray, after01: np.ndarray, span: float | None = None) -> np.ndarray:
    """after − before on a symmetric blue (darker) / red (brighter) scale ±span (default: its own max): RGB uint8."""
    diff = after01.astype(np.float32) - before01.astype(np.float32)
    span = float(np.abs(diff).max()) if span is None else span
    d = np.clip(diff / max(span, 1e-6), -1, 1)  # (H, W) in [-1, 1]
    rgb = np.stack([1 - np.clip(-d, 0, 1), 1 - np.abs(d), 1 - np.clip(d, 0, 1)], axis=-1)  # white = no change
    return (rgb * 255).round().astype(np.uint8)


def std_map(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel standard deviation across samples, scaled to its max (where the model is unsure): RGB."""
    std = np.std(np.stack(samples), axis=0)  # (S, S)
    peak = float(std.max())
    return colormap(std / peak if peak > 0 else std, cv2.COLORMAP_INFERNO)


def metrics_rows(on: Sequence[LayerAttention], off: Sequence[LayerAttention] = ()) -> list[list]:
    """Table rows: layer, CBI, EAR, Attn-IoU, text share with GBCA, then the same without (when compared)."""
    off_by_layer = {a.layer: a for a in off}
    rows = []
    for a in on:
        row = [a.layer, round(a.cbi, 4), round(a.ear, 4), round(a.attn_iou, 4), round(a.text_mass, 4)]
        b = off_by_layer.get(a.layer)
        row += [round(b.cbi, 4), round(b.ear, 4), round(b.attn_iou, 4), round(b.text_mass, 4)] if b else [None] * 4
        rows.append(row)
    return rows


TABLE_HEADERS = ["layer", "CBI", "EAR", "Attn-IoU", "text share",
                 "CBI (GBCA off)", "EAR (GBCA off)", "Attn-IoU (GBCA off)", "text share (GBCA off)"]


def metrics_figure(on: Sequence[LayerAttention], off: Sequence[LayerAttention] = ()):
    """Matplotlib figure: CBI, EAR and Attn-IoU per layer, with GBCA (solid) and without (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (key, title) in zip(axes, METRICS):
        _plot_series(ax, on, key, "GBCA on", "-o")
        if off:
            _plot_series(ax, off, key, "GBCA off", "--s")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    return fig


def _plot_series(ax, layers: Sequence[LayerAttention], key: str, label: str, style: str) -> None:
    xs = [str(a.layer) for a in layers]
    ax.plot(xs, [getattr(a, key) for a in layers], style, label=label, markersize=4)
