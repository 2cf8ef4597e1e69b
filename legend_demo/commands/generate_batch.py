"""`python -m legend_demo generate --jsonl cases.jsonl --out DIR`: many follow-ups, optionally over many GPUs.

Each line is one JSON object: "image" and "text" (required), "id" (the case's folder name under DIR, default
line-00001, …), "points" (a list of {x, y[, confidence]}; default: ground the text), "source_text" and "seed";
the other options come from the command line and apply to every case. Relative image paths are read relative to
the batch file's folder. Every line is checked before any generation (JSON, fields, ids unique and safe).

Under `torchrun` / `accelerate launch` the lines are shared round robin by rank (legend_demo/core/sharding.py), one GPU
per process; rank 0 collects every line's result, prints them in line order (one JSON object per line: {"line",
"id", "out", "engine", "warnings"} or {"line", "id", "error"}) and writes them to DIR/batch.jsonl. The command
exits 1 when any line failed, after the others were made.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from ..core import sharding
from ..core.errors import GenerationError, ImageInputError

FIELDS = {"image", "text", "id", "points", "source_text", "seed"}
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESULTS_FILE = "batch.jsonl"


def read_batch(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, case) for every non-empty line; ValueError listing every problem (up to 10)."""
    if not path.is_file():
        raise FileNotFoundError(f"batch file {path.name!r} does not exist")
    cases, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append((number, _case(line, number, len(cases) + 1)))
        except ValueError as exc:
            problems.append(str(exc))
    ids = [case["id"] for _, case in cases]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"ids used on more than one line: {', '.join(repeated[:5])}")
    if not cases and not problems:
        problems.append(f"{path.name!r} holds no cases")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError("; ".join(problems[:10]) + more)
    return cases


def _case(line: str, number: int, ordinal: int) -> dict[str, Any]:
    try:
        case = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {number} is not JSON ({exc.msg})") from None
    if not isinstance(case, dict):
        raise ValueError(f"line {number} must be a JSON object")
    unknown = sorted(set(case) - FIELDS)
    if unknown:
        raise ValueError(f"line {number}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    if not isinstance(case.get("image"), str) or not isinstance(case.get("text"), str):
        raise ValueError(f"line {number} needs string fields \"image\" and \"text\"")
    case.setdefault("id", f"line-{ordinal:05d}")
    if not isinstance(case["id"], str) or not SAFE_ID.match(case["id"]):
        raise ValueError(f"line {number}: id {case['id']!r} must be 1–100 letters, digits, '.', '_' or '-' "
                         "(it names the case's output folder)")
    seed = case.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"line {number}: seed must be a whole number, got {seed!r}")
    if case.get("points") is not None and not isinstance(case["points"], list):
        raise ValueError(f"line {number}: points must be a list of {{x, y[, confidence]}} objects")
    if case.get("source_text") is not None and not isinstance(case["source_text"], str):
        raise ValueError(f"line {number}: source_text must be a string")
    return case


def _case_args(args: argparse.Namespace, case: dict[str, Any], root: Path, out: Path) -> argparse.Namespace:
    image = Path(case["image"])
    values = dict(vars(args), jsonl=None, image=str(image if image.is_absolute() else root / image),
                  text=case["text"], out=str(out / case["id"]),
                  points=json.dumps(case["points"]) if case.get("points") is not None else None)
    if case.get("source_text") is not None:
        values["source_text"] = case["source_text"]
    if case.get("seed") is not None:
        values["seed"] = case["seed"]
    return argparse.Namespace(**values)


def _generate(generate_one: Callable[[argparse.Namespace], dict], args: argparse.Namespace, number: int, case: dict,
              root: Path, out: Path) -> dict[str, Any]:
    try:
        return {"line": number, "id": case["id"], **generate_one(_case_args(args, case, root, out))}
    except (ValueError, ImageInputError, FileNotFoundError, OSError, GenerationError) as exc:
        return {"line": number, "id": case["id"], "error": str(exc)}


def run_batch(args: argparse.Namespace, generate_one: Callable[[argparse.Namespace], dict]) -> int:
    """Every case of --jsonl through `generate_one` (commands/generate.py), this rank's share; rank 0 writes the results."""
    path = Path(args.jsonl)
    cases = read_batch(path)  # every line checked before any work
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is an existing file; give a folder for the batch")
    shard = sharding.current()
    try:
        sharding.start(shard)
        mine = [(i, _generate(generate_one, args, number, case, path.parent, out)) for i, (number, case) in shard.take(cases)]
        parts = sharding.gather(shard, mine)
    finally:
        sharding.finish(shard)
    if parts is None:  # not rank 0
        return 0
    results = sharding.merge_indexed(parts)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in results))
    for result in results:
        sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 1 if any("error" in r for r in results) else 0
