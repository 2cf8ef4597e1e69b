"""Rebuild the app's example gallery (assets/examples/) from held-out synthetic cases: SYNTHETIC images only.

    python scripts/build_examples.py DATA_DIR [--out assets/examples] [--n 6] [--split test]

DATA_DIR is a data set written by `python -m legend_demo synth` (the shipped gallery: --n 2000 --seed 0).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

MANIFEST = "examples.json"


def export_examples(data_dir: str | Path, out_dir: str | Path, n: int = 6, split: str = "test") -> Path:
    """Copy the reference image of n test-split pairs, one change type after another, plus examples.json."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    cases = sorted(p for p in data_dir.glob("*/*.json") if p.stem == p.parent.name)
    chosen: list[dict] = []
    by_type: dict[str, list[dict]] = {}
    for path in cases:
        meta = json.loads(path.read_text())
        if meta.get("split") == split and meta.get("change", {}).get("direction") != "unchanged":
            by_type.setdefault(meta["change"]["type"], []).append(meta | {"_folder": str(path.parent)})
    if not by_type:
        raise ValueError(f"no {split!r} cases with a change in {data_dir}")
    rank = {"new": 0, "increased": 1, "decreased": 2, "resolved": 3}
    for kind in by_type:  # show progression first; every type once before any type twice
        by_type[kind].sort(key=lambda meta: rank.get(meta["change"]["direction"], 9))
    while len(chosen) < n and any(by_type.values()):
        for kind in sorted(by_type):
            if by_type[kind] and len(chosen) < n:
                chosen.append(by_type[kind].pop(0))
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for meta in chosen:
        name = f"synthetic_{meta['id']}.png"
        shutil.copyfile(Path(meta["_folder"]) / meta["files"]["reference"], out_dir / name)
        change = meta["change"]
        entries.append({
            "file": name,
            "name": f"{change['type']}, {change['direction']} ({change['side']})",
            "text": meta["progression-description"],
            "source_text": meta["source-description"],
            "lesion_points": meta["lesion_points"],
            "change": change,
            "synthetic": True,
        })
    (out_dir / MANIFEST).write_text(json.dumps({"synthetic": True, "split": split, "examples": entries}, indent=2))
    return out_dir / MANIFEST


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "assets" / "examples"))
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    print(export_examples(args.data_dir, args.out, args.n, args.split))
