"""Φ for the vitality analysis (thesis eq. 5.1) without downloads: HOG descriptors plus a centred thumbnail.

The thesis uses DINOv2, which cannot be fetched offline. What vitality needs from Φ is sensitivity to
*structure* (edges, organ outlines, rib and diaphragm geometry) rather than to pixel noise (eq. 5.1's remark on
MSE). HOG (Dalal & Triggs 2005: histograms of gradient orientations over 8×8-pixel cells, L2-Hys-normalised
over 2×2-cell blocks) encodes where edges are and how they run and is insensitive to small intensity changes;
a 16×16 area-averaged thumbnail with its mean removed adds the coarse layout (where lungs and mediastinum are
bright or dark). Each part is L2-normalised and they are concatenated with equal weight, so cos(Φ(U), Φ(V))
lies in [−1, 1] and v(l) = 1 − mean cos in [0, 2]. HOG is computed here with cv2.Sobel and numpy because
OpenCV 5 no longer ships cv2.HOGDescriptor in its main module. A weaker, hand-made stand-in for DINOv2: it ranks
layers by how much the generated anatomy's geometry changes, not by semantics.
"""
from __future__ import annotations

import cv2
import numpy as np

HOG_SIDE = 128  # images are resized to this side first (fixed descriptor length)
CELL, BINS = 8, 9
THUMB_SIDE = 16
NAME = f"HOG (side {HOG_SIDE}, {CELL}px cells, 2x2 blocks, {BINS} bins, L2-Hys) + centred {THUMB_SIDE}x{THUMB_SIDE} thumbnail"


def hog(image01: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] → HOG vector ((HOG_SIDE/CELL − 1)² · 4 · BINS,) = (8100,) for the defaults."""
    image = cv2.resize(image01.astype(np.float32), (HOG_SIDE, HOG_SIDE), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=1)  # (S, S) centred differences
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0)  # unsigned orientation in [0, 180)
    position = angle / (180.0 / BINS) - 0.5  # linear interpolation between the two nearest bin centres
    low = np.floor(position).astype(int)
    frac = position - low
    n = HOG_SIDE // CELL
    cells = np.zeros((n, n, BINS), dtype=np.float64)
    rows, cols = np.divmod(np.arange(HOG_SIDE * HOG_SIDE), HOG_SIDE)
    for shift, share in ((0, 1 - frac), (1, frac)):
        np.add.at(cells, (rows // CELL, cols // CELL, (low.reshape(-1) + shift) % BINS), (magnitude * share).reshape(-1))
    blocks = np.concatenate([cells[:-1, :-1], cells[1:, :-1], cells[:-1, 1:], cells[1:, 1:]], axis=-1)  # (n−1, n−1, 4·BINS)
    blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + 1e-6)
    blocks = np.minimum(blocks, 0.2)  # L2-Hys: clip, renormalise
    blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + 1e-6)
    return blocks.reshape(-1)


def structure_features(images01: np.ndarray) -> np.ndarray:
    """(B, H, W) in [0, 1] → (B, D) unit vectors: [HOG/‖HOG‖, (thumb − mean)/‖·‖] / √2."""
    images01 = np.asarray(images01, dtype=np.float32)
    if images01.ndim != 3:
        raise ValueError(f"expected a (B, H, W) image batch, got shape {images01.shape}")
    rows = []
    for image in np.clip(images01, 0, 1):
        thumb = cv2.resize(image, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).reshape(-1).astype(np.float64)
        rows.append(np.concatenate([_unit(hog(image)), _unit(thumb - thumb.mean())]) / np.sqrt(2))
    return np.stack(rows)  # (B, D)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (B, D) feature batches (eq. 5.1) → (B,)."""
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > 1e-12 else v
