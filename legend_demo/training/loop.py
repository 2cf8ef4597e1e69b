"""Training-loop plumbing shared by both stages: learning-rate schedule with a wall-clock budget, item order,
JSONL log, atomic checkpoint publishing."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger("legend_demo.training")


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up, then cosine decay from lr to min_ratio·lr.

    Progress is max(step / steps, elapsed / budget): with a wall-clock budget the decay completes when the
    budget does, so a run on a slow or shared CPU still ends on a small learning rate.
    """

    lr: float
    steps: int
    warmup: int = 0
    budget_s: float | None = None
    min_ratio: float = 0.1

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate {self.lr} must be a positive number")
        if self.steps < 1 or self.warmup < 0:
            raise ValueError(f"steps={self.steps} must be ≥ 1 and warmup={self.warmup} ≥ 0")
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"time budget {self.budget_s} s must be positive")
        if not 0 <= self.min_ratio <= 1:
            raise ValueError(f"min_ratio={self.min_ratio} must lie in [0, 1]")

    def progress(self, step: int, elapsed_s: float) -> float:
        by_time = elapsed_s / self.budget_s if self.budget_s else 0.0
        return min(1.0, max(step / self.steps, by_time))

    def lr_at(self, step: int, elapsed_s: float) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress(step, elapsed_s)))
        return self.lr * warm * (self.min_ratio + (1 - self.min_ratio) * cosine)

    def done(self, step: int, elapsed_s: float) -> bool:
        return step >= self.steps or (self.budget_s is not None and elapsed_s >= self.budget_s)


class ItemSampler:
    """Epochs of seeded random permutations of range(n); `take(k)` returns the next k indices."""

    def __init__(self, n: int, generator: torch.Generator):
        if n < 1:
            raise ValueError(f"need at least one training item, got {n}")
        self.n, self.generator = n, generator
        self.order: list[int] = []
        self.epoch = 0

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if not self.order:
                self.order = torch.randperm(self.n, generator=self.generator).tolist()
                self.epoch += 1
            out.append(self.order.pop())
        return out


class JsonlLog:
    """Append one JSON object per line (flushed, so a killed run keeps its log) and echo a short line."""

    def __init__(self, path: str | Path, echo: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo

    def write(self, **record) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.echo:
            text = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k != "time")
            log.info(text)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def start_run(out: str | Path, seed: int) -> Path:
    """Seed torch for a training run and make its output folder; returns the folder."""
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def publish(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a checkpoint into out/.partial, then move each entry into out (files atomically, folders by rename).

    A run killed while writing leaves the previous checkpoint in place.
    """
    from diffusers.utils import logging as diffusers_logging

    out = Path(out)
    partial = out / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # save_model's fp16 cast warns on every checkpoint
    try:
        write(partial)
    finally:
        diffusers_logging.set_verbosity(level)
    for entry in sorted(partial.iterdir()):
        target = out / entry.name
        if entry.is_dir():
            old = out / f".old-{entry.name}"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)
    shutil.rmtree(partial, ignore_errors=True)
    return out


def write_json(path: str | Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
