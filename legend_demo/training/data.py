"""Synthetic (ICG-CXR-like) longitudinal pairs in memory, resized to the model side (legend_demo/synth/dataset.py).

Each pair folder `<id>/` holds `<id>-ref.png`, `<id>-flu.png`, `<id>-mask.png` and `<id>.json` with
"source-description", "progression-description", "lesion_points" ([{x, y, confidence}] in image pixels), "split".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.points import LesionPoint, as_points

SPLITS = ("train", "val", "test", "all")


@dataclass
class PairSet:
    """All pairs of one split: images (P, side, side) float32 in [0, 1], masks in [0, 1] (area coverage)."""

    ids: list[str]
    reference: torch.Tensor  # (P, side, side)
    follow_up: torch.Tensor  # (P, side, side)
    mask: torch.Tensor  # (P, side, side)
    source_texts: list[str]
    progression_texts: list[str]
    points: list[list[LesionPoint]]  # lesion points in model pixels (0 ≤ x, y < side)
    side: int

    def __len__(self) -> int:
        return len(self.ids)

    def images_and_texts(self) -> tuple[torch.Tensor, list[str]]:
        """Stage-1 items: [(reference, source text) …; (follow-up, progression text) …] → (2P, side, side), 2P texts."""
        return torch.cat([self.reference, self.follow_up]), self.source_texts + self.progression_texts

    def with_points(self) -> list[int]:
        """Indices of the pairs that have at least one lesion point (stage 2 needs a prior)."""
        return [i for i, pts in enumerate(self.points) if pts]


def pair_folders(root: str | Path) -> list[Path]:
    """Every `<id>/` under root that holds `<id>.json`, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.json").is_file())


def load_pairs(root: str | Path, split: str, side: int, limit: int | None = None) -> PairSet:
    """Read the pairs of `split` ("all" for every pair), resized to side × side with cv2.INTER_AREA."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {', '.join(SPLITS)}")
    if side < 8:
        raise ValueError(f"model side {side} is too small (need ≥ 8 pixels)")
    records = [(folder, json.loads((folder / f"{folder.name}.json").read_text())) for folder in pair_folders(root)]
    records = [(f, r) for f, r in records if split == "all" or r.get("split") == split]
    if limit is not None:
        records = records[:limit]
    if not records:
        raise ValueError(f"no pairs with split={split!r} in {root}")
    rows = [_load_one(folder, record, side) for folder, record in records]
    ref, flu, mask, points = zip(*rows)
    return PairSet(
        ids=[f.name for f, _ in records],
        reference=torch.from_numpy(np.stack(ref)),
        follow_up=torch.from_numpy(np.stack(flu)),
        mask=torch.from_numpy(np.stack(mask)),
        source_texts=[_text(r, "source-description", f) for f, r in records],
        progression_texts=[_text(r, "progression-description", f) for f, r in records],
        points=list(points),
        side=side,
    )


def _load_one(folder: Path, record: dict, side: int):
    name = folder.name
    files = record.get("files", {})
    ref = read_gray(folder / files.get("reference", f"{name}-ref.png"))
    flu = read_gray(folder / files.get("follow_up", f"{name}-flu.png"))
    mask = read_gray(folder / files.get("mask", f"{name}-mask.png"))
    if not (ref.shape == flu.shape == mask.shape):
        raise ValueError(f"{name}: reference {ref.shape}, follow-up {flu.shape} and mask {mask.shape} differ in size")
    height, width = ref.shape
    points = [
        LesionPoint(p.x * side / width, p.y * side / height, p.confidence, p.label)
        for p in as_points(record.get("lesion_points", []))
    ]
    return _resize(ref, side), _resize(flu, side), _resize((mask > 0).astype(np.float32), side), points


def read_gray(path: Path) -> np.ndarray:
    """8- or 16-bit grayscale PNG → (H, W) float32 in [0, 1]."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    top = np.iinfo(pixels.dtype).max if np.issubdtype(pixels.dtype, np.integer) else 1.0
    return (pixels.astype(np.float32) / top).clip(0, 1)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape == (side, side):
        return image.astype(np.float32)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)  # (side, side)


def _text(record: dict, key: str, folder: Path) -> str:
    text = record.get(key)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{folder.name}: {key!r} missing or empty in its JSON")
    return text
