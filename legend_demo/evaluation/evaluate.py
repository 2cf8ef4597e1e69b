"""Held-out evaluation like thesis table 5.2: full method vs GBCA off (s = 0) vs no vital-layer injection.

Every case runs three times with its exact lesion points and the same seed, plus two paired probes of the full
method for cases with a change (probes.py): the points mirrored left–right, and the text's direction reversed.
The product's output is scored (the film: the change composited onto the reference), and the engine's rows at
the model view (edit − source, tiling). The real rendered follow-up is scored with the same image metrics as a
reference row ("data"). Metric definitions: case_metrics.py; checks: summary.py.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..method.edit_region import EditRegion
from ..engines.base import Engine, GenerationRequest
from ..core.sharding import Shard, gather, merge_indexed
from .case_metrics import dilation_radius, film_quality, result_metrics, tiling_ratio
from .cases import EvalCase, load_cases
from .probes import mirrored_points, opposite_text
from .summary import aggregate, by_type, check_lines, gbca_checks, markdown_table, method_checks, type_table


@dataclass(frozen=True)
class Configuration:
    """One ablation row of thesis table 5.2."""

    key: str
    label: str
    bias_strength: float | None  # None: trained s(τ); 0: GBCA off
    inject: bool


CONFIGURATIONS = (
    Configuration("full", "full method (s(τ), injection)", None, True),
    Configuration("gbca_off", "GBCA off (s = 0)", 0.0, True),
    Configuration("no_inject", "no injection", None, False),
)
DATA_ROW = Configuration("data", "real follow-up (data, no model)", None, False)
MIRRORED = Configuration("mirrored", "full method, points mirrored (probe)", None, True)
OPPOSITE = Configuration("opposite", "full method, opposite direction in the text (probe)", None, True)


def configurations(full_strength: float | None = None) -> tuple[Configuration, ...]:
    """The three ablation rows; `full_strength` replaces the trained s(τ) by a fixed s in the GBCA rows."""
    if full_strength is None:
        return CONFIGURATIONS
    if full_strength <= 0:
        raise ValueError(f"--bias-strength={full_strength} must be positive (0 is the GBCA-off row already)")
    return (
        Configuration("full", f"full method (fixed s = {full_strength:g}, injection)", full_strength, True),
        CONFIGURATIONS[1],
        Configuration("no_inject", f"no injection (fixed s = {full_strength:g})", full_strength, False),
    )


def probes_of(full: Configuration) -> tuple[Configuration, Configuration]:
    """The two probes run exactly as the full-method row (same s), changing only the points or the text."""
    return (Configuration(MIRRORED.key, MIRRORED.label, full.bias_strength, full.inject),
            Configuration(OPPOSITE.key, OPPOSITE.label, full.bias_strength, full.inject))


def _request(case: EvalCase, config: Configuration, steps: int | None, seed: int,
             keep_blend: bool = True) -> GenerationRequest:
    text, points = case.progression_text, case.points
    if config.key == "mirrored":
        points = mirrored_points(points, case.reference.shape[1])
    if config.key == "opposite":
        text = opposite_text(case.change or {"type": case.change_type, "direction": case.direction})
    return GenerationRequest(image=case.reference, progression_text=text, source_text=case.source_text,
                             points=points, bias_strength=config.bias_strength, inject=config.inject, steps=steps,
                             seed=seed, edit_region=EditRegion(keep_blend=keep_blend))


def _row(case: EvalCase, config: Configuration, metrics: dict, seconds: float | None) -> dict:
    return {"case": case.case_id, "type": case.change_type, "direction": case.direction, "sign": case.sign,
            "config": config.key, "bias_strength": config.bias_strength, "inject": config.inject,
            **metrics, "seconds": seconds}


def evaluate_case(engine: Engine, case: EvalCase, steps: int | None, seed: int,
                  configs: tuple[Configuration, ...] = CONFIGURATIONS, probes: bool = True,
                  keep_blend: bool = True, films: dict | None = None) -> list[dict]:
    """The configurations' rows, the probes' rows (cases with a change) and the real follow-up's row for one case.

    films: when given, receives each configuration's follow-up film by key (for the thesis metrics)."""
    rows, frame = [], None
    runs = configs + (probes_of(configs[0]) if probes and case.sign != 0 else ())
    for config in runs:
        start = time.perf_counter()
        result = engine.generate(_request(case, config, steps, seed, keep_blend))
        frame = result.frame
        if films is not None:
            films[config.key] = result.film.display
        metrics = result_metrics(result, case.reference, case.mask, case.sign, engine.token_grid)
        rows.append(_row(case, config, metrics, round(time.perf_counter() - start, 3)))
    real = film_quality(case.follow_up, case.reference, case.mask, case.sign)
    period = frame.side // engine.token_grid[0]
    blank = {"recon_psnr": None, "row_fidelity": None, "attn_iou": None, "cbi": None, "ear": None}
    tiling = {"tiling": tiling_ratio(frame.apply(case.follow_up), period),
              "change_tiling": tiling_ratio(frame.apply(case.follow_up) - frame.apply(case.reference), period)}
    rows.append(_row(case, DATA_ROW, {**blank, **real, **tiling}, None))
    return rows


def evaluate(engine: Engine, data_dir: str | Path, split: str = "test", limit: int | None = None,
             steps: int | None = None, seed: int = 0, log: Callable[[str], None] | None = None,
             full_strength: float | None = None, keep_blend: bool = True, thesis=None,
             shard: Shard | None = None, shard_out: Path | None = None) -> dict | None:
    """Run every case of `split` (first `limit`) and return {settings, rows, aggregates, checks, table}.

    keep_blend=False (a diagnostic) turns keep-region blending off, so the edit row's change is the model's own.
    thesis: a thesis_protocol.Networks that also scores each case with the thesis's metrics (report["thesis"]).
    shard: under torchrun each process runs its share of the cases (sharding.py); rank 0 merges them in case order
    and returns the report, the other ranks return None; shard_out: each rank also writes its own rows there."""
    cases = load_cases(data_dir, split, limit)
    configs_used = configurations(full_strength)
    log = log or logging.getLogger("legend_demo.evaluation").info
    shard = shard or Shard()
    mine: list[tuple[int, list[dict]]] = []
    scored: list = []
    share = shard.take(cases)
    for count, (i, case) in enumerate(share, 1):
        start = time.perf_counter()
        films: dict | None = {} if thesis is not None else None
        mine.append((i, evaluate_case(engine, case, steps, seed, configs_used, keep_blend=keep_blend, films=films)))
        if thesis is not None:
            scored.append(thesis.score_case(i, case, films))
        log(f"evaluate: {count}/{len(share)} {case.case_id} ({case.change_type}, {case.direction}) "
            f"{time.perf_counter() - start:.1f} s{'' if not shard.distributed else ' [' + shard.label() + ']'}")
    if shard_out is not None and shard.distributed:
        write_shard(shard_out, shard, mine, scored)
    parts = gather(shard, (mine, scored))
    if parts is None:
        return None
    rows = [row for case_rows in merge_indexed([p[0] for p in parts]) for row in case_rows]
    shown = (*configs_used, *probes_of(configs_used[0]), DATA_ROW)
    configs = [c.key for c in shown]
    aggregates = aggregate(rows, configs)
    checks = gbca_checks(rows, "full", "gbca_off") + method_checks(rows, aggregates)
    labels = {c.key: c.label for c in shown}
    shapes = by_type(rows, [configs[0], DATA_ROW.key])
    table = (markdown_table(aggregates, labels) + "\n\nShape Dice by finding type (cases with a described change; "
             "mean ± 95 % CI (n)):\n\n" + type_table(shapes, labels))
    return {"data": str(data_dir), "split": split, "n_cases": len(cases), "engine": engine.name,
            "checkpoint": engine.checkpoint, "steps": steps or engine.default_steps, "seed": seed,
            "keep_blend": keep_blend,
            "model_side": engine.model_side, "mask_dilation_px": dilation_radius(engine.model_side),
            "configurations": [vars(c) for c in shown], "rows": rows,
            "aggregates": aggregates, "checks": checks,
            "shape_by_type": shapes, "table": table, "check_lines": check_lines(checks),
            **_thesis_and_processes(parts, shard, thesis, labels)}


def _thesis_and_processes(parts: list, shard: Shard, thesis, labels: dict[str, str]) -> dict:
    """The report's "processes" and, with thesis metrics, its "thesis" part (thesis_protocol.summarise)."""
    extra: dict = {"processes": shard.world_size}
    if thesis is not None:
        from .thesis_protocol import summarise

        extra["thesis"] = summarise([c for p in parts for c in p[1]], thesis.metrics, thesis.describe(), labels)
    return extra

def write_shard(folder: Path, shard: Shard, mine: list[tuple[int, list[dict]]], scored: list) -> Path:
    """One rank's per-case rows (and thesis per-case rows) as JSON: <folder>/rank-R-of-W.json."""
    import json

    from .thesis_protocol import case_rows

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rank-{shard.rank:05d}-of-{shard.world_size:05d}.json"
    record = {"rank": shard.rank, "world_size": shard.world_size, "case_indices": [i for i, _ in mine],
              "rows": [row for _, rows in mine for row in rows], "thesis_rows": case_rows(scored) if scored else []}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path
