"""Pick a few held-out synthetic cases as the app's example gallery (assets/examples/): SYNTHETIC images only."""
from __future__ import annotations

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
