"""`python -m legend_demo evaluate --data DIR`: held-out quality table (issue 5 §4, like thesis table 5.2)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score full method vs GBCA off vs no injection on held-out pairs",
                              description=__doc__)
    p.add_argument("--data", required=True, help="data set folder (<id>/<id>-ref.png, -flu.png, -mask.png, .json)")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--n", type=int, default=None, help="evaluate only the first N cases of the split (by id)")
    p.add_argument("--engine", default=None, help="engine name (default: the first available)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the engine's)")
    p.add_argument("--seed", type=int, default=0, help="seed shared by all configurations (default 0)")
    p.add_argument("--bias-strength", type=float, default=None,
                   help="diagnostic: a fixed s in the GBCA rows instead of the trained s(τ) (default: trained)")
    p.add_argument("--no-keep-blend", action="store_true",
                   help="diagnostic: no keep-region blending, so the edit row's change outside W is the model's own "
                        "(see the edit − source fidelity of the mirrored probe)")
    p.add_argument("--out", default=None, help="write per-case rows and aggregates to this JSON file")
    p.add_argument("--figure", default=None,
                   help="also write a difference-map figure of the first --figure-cases cases with a change (PNG)")
    p.add_argument("--figure-cases", type=int, default=8, help="cases in the figure (default 8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engines.registry import load_engine
    from ..evaluation.cases import load_cases
    from ..evaluation.evaluate import evaluate

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    load_cases(args.data, args.split, args.n)  # fail on bad data before loading an engine
    engine = load_engine(args.engine)
    if args.figure:
        from ..evaluation.figures import case_figure

        cases = [c for c in load_cases(args.data, args.split, args.n) if c.sign != 0][: args.figure_cases]
        print(f"wrote {case_figure(engine, cases, args.figure, args.steps, args.seed, args.bias_strength)}")
    report = evaluate(engine, args.data, args.split, args.n, args.steps, args.seed, full_strength=args.bias_strength,
                      keep_blend=not args.no_keep_blend)
    print(f"## Evaluation: {report['n_cases']} {args.split} cases, engine {report['engine']}, "
          f"{report['steps']} steps, seed {args.seed} (mean ± 95 % CI)\n")
    print(report["table"] + "\n")
    print("\n".join(report["check_lines"]))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {out}")
    return 0
