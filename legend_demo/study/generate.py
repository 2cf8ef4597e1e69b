"""Filling in a manifest's missing candidates with a generation engine (saved marked SYNTHETIC).

Each candidate is made as the app makes one: the rules grounder places the lesion points from the case's text,
the engine draws the change, and the change is composited onto the prior film at its own resolution
(legend_demo/method/composite.py), saved as a PNG with the SYNTHETIC band below the film.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..core import sharding
from ..engines.base import GenerationRequest
from ..engines.registry import load_engine
from ..core.export import save_film_png
from ..grounding import predict_points
from ..core.image_io import load_image
from .manifest import CaseSpec, Manifest, resolve_inside

GENERATED_DIR = "generated"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def missing_count(manifest: Manifest) -> int:
    return sum(1 for case in manifest.cases for c in case.candidates if c.path is None)


def generate_missing(
    manifest: Manifest, engine_name: str | None = None, *, seed: int = 0, log: Callable[[str], None] = lambda _: None,
    shard: sharding.Shard | None = None,
) -> Manifest:
    """Generate every path-less candidate from its case's prior and text; return the manifest with paths filled.

    Under torchrun (`shard`) each rank makes the missing candidates whose running number mod WORLD_SIZE is its rank
    and all ranks wait for each other; the file names do not depend on the rank, so every rank returns the same
    manifest (the study folder must be shared by the ranks, e.g. one node or a shared file system)."""
    if missing_count(manifest) == 0:
        return manifest
    shard = shard or sharding.Shard()
    sharding.start(shard)
    engine = load_engine(engine_name)
    out_dir = manifest.root / GENERATED_DIR
    out_dir.mkdir(exist_ok=True)
    cases, number = [], 0
    for case in manifest.cases:
        candidates = []
        for candidate in case.candidates:
            if candidate.path is None:
                rel = f"{GENERATED_DIR}/{_safe(case.key)}-{_safe(candidate.source)}.png"
                if number % shard.world_size == shard.rank:
                    _generate_one(engine, manifest.root, case, rel, seed)
                    log(f"generated {rel} for case {case.key!r} with {engine.name}"
                        f"{' (' + shard.label() + ')' if shard.distributed else ''}")
                number += 1
                candidate = replace(candidate, path=rel)
            candidates.append(candidate)
        cases.append(replace(case, candidates=tuple(candidates)))
    sharding.barrier(shard)  # every rank's files are written before rank 0 stores the study
    sharding.finish(shard)
    return replace(manifest, cases=tuple(cases))


def _generate_one(engine, root: Path, case: CaseSpec, rel: str, seed: int) -> None:
    prior = load_image(str(resolve_inside(root, case.prior)))
    points = predict_points(prior, case.text)
    result = engine.generate(GenerationRequest(image=prior, progression_text=case.text, points=points, seed=seed))
    save_film_png(result.film, prior, root / rel, engine=result.engine, checkpoint=result.checkpoint)
