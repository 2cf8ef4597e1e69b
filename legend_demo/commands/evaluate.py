"""`python -m legend_demo evaluate --data DIR`: held-out quality table (issue 5 §4, like thesis table 5.2)."""
from __future__ import annotations

import argparse
import json
import sys
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
    p.add_argument("--metrics", default=None,
                   help="also the thesis's protocol (§4.3.2): 'all' or some of fid,kid,clip_t,ms_ssim,psnr,auc,f1 "
                        "(FID/KID/AUC/F1 need TorchXRayVision's densenet121-res224-all weights, see README)")
    p.add_argument("--random-feature-weights", action="store_true",
                   help="with --metrics: random feature/classifier networks (smoke runs; FID/AUC mean nothing)")
    p.add_argument("--xrv-weights", default=None,
                   help="TorchXRayVision weight file or folder (default: LEGEND_XRV_PATH or "
                        "checkpoints/xrv-densenet121-res224-all/)")
    p.add_argument("--csv", default=None,
                   help="with --metrics: per-case CSV of the thesis metrics (default: beside --out, <out>.cases.csv)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core import sharding
    from ..engines.registry import load_engine
    from ..evaluation.cases import load_cases
    from ..evaluation.evaluate import evaluate

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    metrics = _thesis_metrics(args)
    load_cases(args.data, args.split, args.n)  # fail on bad data before loading an engine
    shard = sharding.current()
    try:
        sharding.start(shard)
        thesis = _networks(args, metrics, shard) if metrics else None  # a missing weight file fails here, early
        engine = load_engine(args.engine)
        if args.figure and shard.is_main:
            from ..evaluation.figures import case_figure

            cases = [c for c in load_cases(args.data, args.split, args.n) if c.sign != 0][: args.figure_cases]
            print(f"wrote {case_figure(engine, cases, args.figure, args.steps, args.seed, args.bias_strength)}")
        shard_out = Path(f"{args.out}.shards") if args.out else None
        report = evaluate(engine, args.data, args.split, args.n, args.steps, args.seed,
                          full_strength=args.bias_strength, keep_blend=not args.no_keep_blend, thesis=thesis,
                          shard=shard, shard_out=shard_out)
    finally:
        sharding.finish(shard)
    if report is None:  # not rank 0: its share went to rank 0
        return 0
    _print_report(report, args)
    return 0


def _thesis_metrics(args: argparse.Namespace) -> tuple[str, ...]:
    from ..evaluation.thesis_protocol import parse_metrics

    if args.metrics is None:
        for flag, given in (("--random-feature-weights", args.random_feature_weights),
                            ("--xrv-weights", args.xrv_weights), ("--csv", args.csv)):
            if given:
                raise ValueError(f"{flag} needs --metrics")
        return ()
    return parse_metrics(args.metrics)


def _networks(args: argparse.Namespace, metrics: tuple[str, ...], shard):
    from ..evaluation.thesis_protocol import Networks

    quiet = (lambda line: None) if not shard.is_main else (lambda line: print(line, file=sys.stderr))
    return Networks(metrics, random_weights=args.random_feature_weights, xrv_path=args.xrv_weights,
                    log=quiet)


def _print_report(report: dict, args: argparse.Namespace) -> None:
    processes = report.get("processes", 1)
    print(f"## Evaluation: {report['n_cases']} {args.split} cases, engine {report['engine']}, "
          f"{report['steps']} steps, seed {args.seed} (mean ± 95 % CI)"
          f"{f', {processes} processes' if processes > 1 else ''}\n")
    print(report["table"] + "\n")
    print("\n".join(report["check_lines"]))
    thesis = report.get("thesis")
    if thesis:
        print(f"\n## Thesis protocol (§4.3.2): {report['n_cases']} {args.split} cases\n")
        for line in _network_lines(thesis["networks"]):
            print(line)
        print("\n" + thesis["table"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {out}")
    if thesis and (args.csv or args.out):
        from ..evaluation.thesis_protocol import write_csv

        csv_path = Path(args.csv) if args.csv else Path(args.out).with_suffix(".cases.csv")
        print(f"wrote {write_csv(thesis['rows'], csv_path)}")


def _network_lines(networks: dict) -> list[str]:
    lines = [f"- features/classifier: {networks['xrv']}" if networks.get("xrv") else None,
             f"- Inception FID: {networks['inception']}" if networks.get("inception") else None,
             f"- CLIP-T: {networks['clip']}" if networks.get("clip") else None,
             f"- MS-SSIM / PSNR: {networks['ms_ssim_psnr']}"]
    lines += [f"- {line}" for line in networks.get("skipped", [])]
    return [line for line in lines if line]
