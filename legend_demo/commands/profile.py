"""`python -m legend_demo profile --engine legend-ar --pairs DIR --out DIR`: layer-wise attention profiling under
teacher forcing (thesis §4.2.1, Figs. 4.2 and 4.5).

For every (prior, progression text, follow-up) pair of DIR (the ICG-CXR folder layout `train` reads), one forward
pass over [X_A; X_D; X_B] with GBCA off and one with GBCA on; per layer the attention of the follow-up queries to
the reference-image keys on the token grid, and its CBI / EAR / Attn-IoU. Writes OUT/profile.csv and
OUT/profile.json (per-layer means, off and on), OUT/profile.png (the curves) and OUT/maps.png (mean maps).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ENGINES = ("legend-ar",)  # engines with a teacher-forcing pass
COLUMNS = ("layer", "gbca", "pairs", "attn_iou", "cbi", "ear", "text_mass")


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="layer-wise attention profile (teacher forcing, GBCA off/on)",
                              description=__doc__)
    p.add_argument("--engine", choices=ENGINES, default="legend-ar")
    p.add_argument("--pairs", required=True, help="pair folders (<id>/<id>.json, -ref.png, -flu.png)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="all", help="pairs of this split only (default all)")
    p.add_argument("--limit", type=int, default=None, help="at most this many pairs")
    p.add_argument("--layers", default=None, help="layers to profile, e.g. 0,8,16 (default every layer)")
    p.add_argument("--gbca-layers", default=None, help="layers that get the bias in the GBCA pass (default the engine's)")
    p.add_argument("--bias-strength", type=float, default=None,
                   help="fixed s for the GBCA pass (default the trained strength MLP)")
    p.add_argument("--sigma-ratio", type=float, default=0.10, help="Gaussian prior σ ratio (default 0.10)")
    p.add_argument("--side", type=int, default=None, help="model side in pixels (default the engine's, thesis 256)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engines.base import SIGMA_RATIO_RANGE
    from ..engines.registry import load_engine
    from ..method.layer_spec import parse_layers
    from ..training.data import load_pairs

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {args.limit}")
    lo, hi = SIGMA_RATIO_RANGE
    if not lo <= args.sigma_ratio <= hi:
        raise ValueError(f"--sigma-ratio {args.sigma_ratio} is outside [{lo}, {hi}]")
    layers = parse_layers(args.layers, "--layers")
    gbca_layers = parse_layers(args.gbca_layers, "--gbca-layers")
    if not Path(args.pairs).is_dir():
        raise FileNotFoundError(f"--pairs folder not found: {args.pairs}")
    options = {} if args.side is None else {"model_side": args.side}
    engine = load_engine(args.engine, **options)
    pairs = load_pairs(args.pairs, args.split, engine.model_side, args.limit)
    progress = lambda done, total: print(f"profiled {done}/{total} pairs", file=sys.stderr, flush=True)
    run_ = engine.profile(pairs, layers=layers, gbca_layers=gbca_layers, bias_strength=args.bias_strength,
                          sigma_ratio=args.sigma_ratio, progress=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = run_.table()
    write_outputs(out, table, run_, engine, args, len(pairs))
    print(json.dumps({"out": str(out), "pairs": len(pairs), "layers": len({r["layer"] for r in table}),
                      "seconds_per_pass": round(run_.seconds_per_pass, 4)}))
    return 0


def write_outputs(out: Path, table: list[dict], run_, engine, args: argparse.Namespace, pairs: int) -> None:
    from ..ar.profiling import plot_maps, plot_profile

    with open(out / "profile.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: row[k] for k in COLUMNS} for row in table)
    record = {
        "engine": engine.name,
        "checkpoint": engine.checkpoint,
        "pairs": pairs,
        "split": args.split,
        "model_side": engine.model_side,
        "token_grid": list(engine.token_grid),
        "sigma_ratio": args.sigma_ratio,
        "gbca_layers": run_.bias_layers,
        "strength_per_layer": {str(k): v for k, v in run_.strengths.items()},
        "bias_strength": args.bias_strength,
        "maps": "softmax probabilities of follow-up queries over reference-image keys, mean over heads and queries",
        "seconds_per_pass": run_.seconds_per_pass,
        "table": table,
    }
    (out / "profile.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_profile(run_, out / "profile.png")
    plot_maps(run_, out / "maps.png")
