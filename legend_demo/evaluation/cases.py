"""Held-out evaluation cases read from a synthetic (ICG-CXR-like) data set folder.

Layout (legend_demo/synth/dataset.py): <data>/<id>/<id>-ref.png, <id>-flu.png, <id>-mask.png (0/255) and
<id>.json with "progression-description", "source-description", "change" {type, direction, ...},
"lesion_points" [{x, y, confidence}] in image pixels, and "split".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.points import LesionPoint, as_points
from .direction import expected_sign

REQUIRED_KEYS = ("progression-description", "change", "lesion_points", "split")


@dataclass(frozen=True)
class EvalCase:
    """One reference/follow-up pair with its exact lesion mask and points (original pixels)."""

    case_id: str
    reference: np.ndarray  # (H, W) float32 in [0, 1]
    follow_up: np.ndarray  # (H, W) float32 in [0, 1], the real (rendered) follow-up
    mask: np.ndarray  # (H, W) bool, the exact lesion mask
    progression_text: str
    source_text: str
    change_type: str
    direction: str
    points: list[LesionPoint]
    change: dict | None = None  # the record's "change" object (type, side, lobe, direction, ...)

    @property
    def sign(self) -> int:
        return expected_sign(self.change_type, self.direction)


def read_gray(path: Path) -> np.ndarray:
    """8- or 16-bit grayscale PNG → (H, W) float32 in [0, 1]."""
    if not path.is_file():
        raise ValueError(f"missing image file {path}")
    with Image.open(path) as image:
        pixels = np.asarray(image)
    if pixels.ndim != 2:
        raise ValueError(f"{path} is not a single-channel image (shape {pixels.shape})")
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype)
    if top is None:  # Pillow reads some 16-bit PNGs as int32 ("I" mode)
        top = 65535.0 if pixels.max() > 255 else 255.0
    return (pixels.astype(np.float32) / top).clip(0.0, 1.0)


def read_record(path: Path) -> dict:
    """The pair JSON; ValueError naming the file when it is not a JSON object with the required keys."""
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON in {path}: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    if not isinstance(record["change"], dict) or not {"type", "direction"} <= set(record["change"]):
        raise ValueError(f"{path}: 'change' must be an object with 'type' and 'direction', got {record['change']!r}")
    return record


def find_records(data_dir: str | Path) -> list[tuple[Path, dict]]:
    """(folder, record) for every <id>/<id>.json under data_dir, sorted by id."""
    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} does not exist or is not a folder")
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        path = folder / f"{folder.name}.json"
        if path.is_file():
            found.append((folder, read_record(path)))
    return found


def load_case(folder: Path, record: dict) -> EvalCase:
    """Read one pair's images, mask and description; check sizes agree."""
    cid = folder.name
    reference = read_gray(folder / f"{cid}-ref.png")
    follow_up = read_gray(folder / f"{cid}-flu.png")
    mask = read_gray(folder / f"{cid}-mask.png") >= 0.5
    if not (reference.shape == follow_up.shape == mask.shape):
        raise ValueError(f"case {cid}: reference {reference.shape}, follow-up {follow_up.shape} and mask "
                         f"{mask.shape} differ in size")
    change = record["change"]
    case = EvalCase(cid, reference, follow_up, mask, str(record["progression-description"]),
                    str(record.get("source-description") or ""), str(change["type"]), str(change["direction"]),
                    as_points(record["lesion_points"]), dict(change))
    case.sign  # noqa: B018 — validate type/direction now, not after minutes of generation
    return case


def load_cases(data_dir: str | Path, split: str = "test", limit: int | None = None) -> list[EvalCase]:
    """The first `limit` cases (by id) of `split`; ValueError when the folder has none."""
    if limit is not None and limit < 1:
        raise ValueError(f"--n must be at least 1, got {limit}")
    records = find_records(data_dir)
    if not records:
        raise ValueError(f"no pair folders (<id>/<id>.json) found in {str(data_dir)!r}")
    chosen = [(f, r) for f, r in records if r["split"] == split]
    if not chosen:
        splits = sorted({str(r["split"]) for _, r in records})
        raise ValueError(f"no cases in split {split!r} under {str(data_dir)!r} (splits present: {', '.join(splits)})")
    return [load_case(f, r) for f, r in chosen[:limit]]
