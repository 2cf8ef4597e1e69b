"""Aggregate per-case rows: mean ± 95 % CI per configuration, the GBCA and method checks, and a markdown table."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .shape_score import SMALL_TYPES

METRICS = ("recon_psnr", "psnr_out", "ssim_out", "lesion_fidelity", "row_fidelity", "unchanged_change", "tiling",
           "change_tiling", "attn_iou", "cbi", "ear", "shape_dice")
HEADERS = {"recon_psnr": "src recon PSNR (dB)↑", "psnr_out": "PSNR out (dB)↑", "ssim_out": "SSIM out↑",
           "lesion_fidelity": "lesion fidelity↑", "row_fidelity": "edit − source fidelity↑",
           "unchanged_change": "Δ unchanged (≈0)", "tiling": "edit-row tiling (≈1)",
           "change_tiling": "composited change tiling (≈1)", "attn_iou": "Attn-IoU↑",
           "cbi": "CBI↓", "ear": "EAR↓", "shape_dice": "shape Dice↑"}
DIGITS = {"recon_psnr": 2, "psnr_out": 2, "ssim_out": 4}
MAX_PSNR_LOSS_DB = 1.0
MIN_LESION_FIDELITY = 0.045  # issue 10: half the real follow-ups' 0.090
MIN_PSNR_OUT_DB = 30.0
MAX_TILING = 1.15  # real renders: 0.98–1.13
MIN_SHAPE_DICE = 0.6  # issue 19: the change's support vs the true mask
MIN_SMALL_SHAPE_DICE = 0.4  # … for small findings (shape_score.SMALL_TYPES)
CHANGED_ONLY = ("lesion_fidelity", "row_fidelity", "shape_dice")  # scored on cases with a described change


def mean_ci(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean and half-width of the two-sided 95 % Student-t interval of the non-missing values."""
    xs = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if xs.size == 0:
        return {"mean": None, "ci95": None, "n": 0}
    half = None
    if xs.size > 1:
        half = float(stats.t.ppf(0.975, xs.size - 1) * xs.std(ddof=1) / math.sqrt(xs.size))
    return {"mean": float(xs.mean()), "ci95": half, "n": int(xs.size)}


def _metric_values(rows: list[dict], metric: str) -> list[float | None]:
    if metric == "unchanged_change":
        return [r["lesion_change"] for r in rows if r["sign"] == 0]
    if metric in CHANGED_ONLY:
        return [r.get(metric) for r in rows if r["sign"] != 0]
    return [r.get(metric) for r in rows]


def aggregate(rows: list[dict], configs: list[str]) -> dict[str, dict[str, dict]]:
    """{config: {metric: {mean, ci95, n}}} over the rows of each configuration."""
    return {c: {m: mean_ci(_metric_values([r for r in rows if r["config"] == c], m)) for m in METRICS}
            for c in configs}


def paired_difference(rows: list[dict], metric: str, better: str, worse: str) -> dict:
    """Mean ± CI of per-case (better − worse) for `metric`, over cases where both are present."""
    by_case: dict[str, dict[str, float]] = {}
    for r in _rows_with(rows, metric):
        by_case.setdefault(r["case"], {})[r["config"]] = r[metric]
    diffs = [v[better] - v[worse] for v in by_case.values() if better in v and worse in v]
    return mean_ci(diffs)


def _rows_with(rows: list[dict], metric: str) -> list[dict]:
    rows = [r for r in rows if r.get(metric) is not None]
    return [r for r in rows if r["sign"] != 0] if metric in CHANGED_ONLY else rows


def method_checks(rows: list[dict], aggregates: dict[str, dict[str, dict]]) -> list[dict]:
    """Issue 10: the change follows the points and the text, is large enough, local, and not tiled."""
    checks = []
    for other, label in (("mirrored", "the change follows the points: true − mirrored points"),
                         ("opposite", "the change follows the text's direction: described − opposite direction")):
        diff = paired_difference(rows, "lesion_fidelity", "full", other)
        checks.append(_check(label, "lesion_fidelity", 0.0, diff, "full", other))
    full = aggregates.get("full", {})
    for metric, label, threshold, above in (
        ("lesion_fidelity", f"lesion fidelity ≥ {MIN_LESION_FIDELITY:g}", MIN_LESION_FIDELITY, True),
        ("psnr_out", f"PSNR outside the dilated mask ≥ {MIN_PSNR_OUT_DB:g} dB", MIN_PSNR_OUT_DB, True),
        ("change_tiling", f"no token blocks in the composited change: tiling ≤ {MAX_TILING:g}", MAX_TILING, False),
        ("shape_dice", f"shape Dice ≥ {MIN_SHAPE_DICE:g}", MIN_SHAPE_DICE, True),
    ):
        stat = full.get(metric, {"mean": None, "ci95": None, "n": 0})
        checks.append(_level_check(label, metric, threshold, stat, above))
    small = mean_ci([r.get("shape_dice") for r in rows
                     if r["config"] == "full" and r["sign"] != 0 and r["type"] in SMALL_TYPES])
    if small["n"]:
        checks.append(_level_check(f"shape Dice of small findings ({', '.join(SMALL_TYPES)}) ≥ {MIN_SMALL_SHAPE_DICE:g}",
                                   "shape_dice", MIN_SMALL_SHAPE_DICE, small, True))
    return checks


def by_type(rows: list[dict], configs: list[str], metric: str = "shape_dice") -> dict[str, dict[str, dict]]:
    """{config: {finding type: {mean, ci95, n}}} of `metric` over the cases with a described change."""
    types = sorted({r["type"] for r in rows})
    return {c: {t: mean_ci([r.get(metric) for r in rows if r["config"] == c and r["type"] == t and r["sign"] != 0])
                for t in types} for c in configs}


def type_table(table: dict[str, dict[str, dict]], labels: dict[str, str], metric: str = "shape_dice") -> str:
    """One row per configuration, one column per finding type: mean ± 95 % CI (n)."""
    types = sorted({t for per in table.values() for t in per})
    lines = ["| configuration | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for config, per in table.items():
        cells = [f"{_cell(per[t], metric)} ({per[t]['n']})" if per[t]["n"] else "—" for t in types]
        lines.append(f"| {labels.get(config, config)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _check(label: str, metric: str, threshold: float, diff: dict, better: str, worse: str) -> dict:
    ok = diff["mean"] is not None and diff["mean"] > threshold
    significant = diff["ci95"] is not None and diff["mean"] - diff["ci95"] > threshold
    return {"criterion": label, "metric": metric, "threshold": threshold, "difference": diff, "pair": [better, worse],
            "pass": bool(ok), "ci_clears_threshold": bool(significant)}


def _level_check(label: str, metric: str, threshold: float, stat: dict, above: bool) -> dict:
    mean, half = stat["mean"], stat["ci95"] or 0.0
    ok = mean is not None and (mean >= threshold if above else mean <= threshold)
    clears = mean is not None and (mean - half >= threshold if above else mean + half <= threshold)
    return {"criterion": label, "metric": metric, "threshold": threshold, "level": stat, "pass": bool(ok),
            "ci_clears_threshold": bool(clears)}


def gbca_checks(rows: list[dict], full: str, off: str) -> list[dict]:
    """Issue 5: GBCA raises Attn-IoU and lesion fidelity over s = 0, losing ≤ 1 dB PSNR outside the mask."""
    checks = []
    for metric, label, threshold in (("attn_iou", "GBCA raises Attn-IoU over s = 0", 0.0),
                                     ("lesion_fidelity", "GBCA raises lesion fidelity over s = 0", 0.0),
                                     ("psnr_out", f"GBCA loses ≤ {MAX_PSNR_LOSS_DB:g} dB PSNR outside the mask",
                                      -MAX_PSNR_LOSS_DB)):
        diff = paired_difference(rows, metric, full, off)
        strict = threshold == 0.0  # "raise" means strictly above; the PSNR budget allows equality
        ok = diff["mean"] is not None and (diff["mean"] > threshold if strict else diff["mean"] >= threshold)
        significant = diff["ci95"] is not None and diff["mean"] - diff["ci95"] > threshold
        checks.append({"criterion": label, "metric": metric, "threshold": threshold, "difference": diff,
                       "pass": bool(ok), "ci_clears_threshold": bool(significant)})
    return checks


def _cell(stat: dict, metric: str) -> str:
    if stat["mean"] is None:
        return "—"
    digits = DIGITS.get(metric, 3)
    ci = "" if stat["ci95"] is None else f" ± {stat['ci95']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}{ci}"


def markdown_table(aggregates: dict[str, dict[str, dict]], labels: dict[str, str]) -> str:
    """One row per configuration, mean ± 95 % CI per metric."""
    lines = ["| configuration | " + " | ".join(HEADERS[m] for m in METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for config, stats_ in aggregates.items():
        lines.append(f"| {labels.get(config, config)} | " + " | ".join(_cell(stats_[m], m) for m in METRICS) + " |")
    return "\n".join(lines)


def check_lines(checks: list[dict]) -> list[str]:
    """'PASS/FAIL criterion: full − off = m ± h (n cases)' per check."""
    lines = []
    for c in checks:
        d = c.get("difference") or c["level"]
        if d["mean"] is None:
            numbers = "no values"
        else:
            ci = "" if d["ci95"] is None else f" ± {d['ci95']:.4f}"
            if "difference" in c:
                better, worse = c.get("pair", ["full", "gbca_off"])
                names = {"gbca_off": "(s = 0)"}
                numbers = f"{better} − {names.get(worse, worse)} = {d['mean']:+.4f}{ci} over {d['n']} cases"
            else:
                numbers = f"full = {d['mean']:.4f}{ci} over {d['n']} cases"
            numbers += "" if c["ci_clears_threshold"] else "; the 95 % CI does not clear the threshold"
        lines.append(f"{'PASS' if c['pass'] else 'FAIL'} {c['criterion']}: {numbers}")
    return lines
