"""`python -m legend_demo ground`: progression text → lesion points on a radiograph, as JSON (thesis §4.6).

One case: --image PATH --text TEXT prints {"points": [...], "image_size": [W, H], "grounder": ..., "warnings": [...]}.
Batch: --jsonl FILE with one {"image": PATH, "text": TEXT[, "grounder": ...]} per line prints one JSON object
per line, in order; a case that fails prints {"line": n, "error": "..."} and the command exits 1 at the end.
Relative image paths in the batch file are read relative to the batch file's folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.errors import ImageInputError
from ..grounding.registry import DEFAULT_GROUNDER, GROUNDERS


def register(subparsers) -> None:
    p = subparsers.add_parser("ground", help="place lesion points for a progression description on a radiograph")
    p.add_argument("--image", help="prior radiograph: PNG, JPEG, TIFF or DICOM")
    p.add_argument("--text", help="progression description, e.g. 'new right lower lobe consolidation'")
    p.add_argument("--grounder", default=DEFAULT_GROUNDER, choices=GROUNDERS,
                   help="rules: deterministic, CPU (default); vlm: Qwen2.5-VL-7B (needs installed weights; "
                        "falls back to rules if an answer is unusable)")
    p.add_argument("--jsonl", help="batch file: one {\"image\": ..., \"text\": ...} object per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.jsonl:
        if args.image or args.text:
            raise ValueError("give either --jsonl or --image with --text, not both")
        return _run_batch(Path(args.jsonl), args.grounder)
    if not args.image or args.text is None:
        raise ValueError("ground needs --image PATH and --text TEXT (or --jsonl FILE)")
    _print(_ground_one(args.image, args.text, args.grounder))
    return 0


def _ground_one(image: str | Path, text: str, grounder: str) -> dict[str, Any]:
    from ..grounding import ground

    return ground(Path(image), text, grounder).to_dict()


def _run_batch(path: Path, default_grounder: str) -> int:
    if not path.is_file():
        raise FileNotFoundError(f"batch file {path} does not exist")
    failed = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = _case(line, number)
            image = Path(case["image"])
            image = image if image.is_absolute() else path.parent / image
            _print(_ground_one(image, case["text"], case.get("grounder", default_grounder)))
        except (ValueError, ImageInputError, FileNotFoundError, OSError) as exc:
            failed = True
            _print({"line": number, "error": str(exc)})
    return 1 if failed else 0


def _case(line: str, number: int) -> dict[str, Any]:
    try:
        case = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {number} is not JSON ({exc.msg})") from None
    if not isinstance(case, dict) or not isinstance(case.get("image"), str) or not isinstance(case.get("text"), str):
        raise ValueError(f"line {number} needs string fields \"image\" and \"text\", got {line.strip()[:120]!r}")
    if case.get("grounder", DEFAULT_GROUNDER) not in GROUNDERS:
        raise ValueError(f"line {number}: grounder must be {' or '.join(map(repr, GROUNDERS))}, got {case['grounder']!r}")
    return case


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
