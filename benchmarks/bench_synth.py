"""Benchmark the synthetic pair renderer (not a test): per-pair CPU and wall time, projected time for 2000 pairs.

python benchmarks/bench_synth.py [--pairs 30] [--size 256] [--dataset-pairs 0]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30, help="pairs rendered in-process (after warm-up)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dataset-pairs", type=int, default=0, help="also run generate_dataset with 2 workers")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from legend_demo.synth.changes import sample_change
    from legend_demo.synth.dataset import SynthConfig, generate_dataset
    from legend_demo.synth.drr import DRRRenderer
    from legend_demo.synth.framing import chest_field_of_view
    from legend_demo.synth.pair import TILT_BANK, render_pair
    from legend_demo.synth.volume import load_volume

    start = time.perf_counter()
    volume = load_volume()
    print(f"load volume (cached .npz): {time.perf_counter() - start:.2f} s, shape {volume.shape}")
    renderer, fov = DRRRenderer(volume), chest_field_of_view(volume)
    wall, cpu = time.perf_counter(), time.process_time()
    for tilt in TILT_BANK:
        renderer.anatomy(tilt)
    print(f"anatomy bank ({len(TILT_BANK)} tilts): {time.perf_counter() - wall:.2f} s wall, "
          f"{time.process_time() - cpu:.2f} s CPU (once per worker)")
    for index in range(5):  # warm the per-volume distance maps
        rng = np.random.default_rng([99, index])
        render_pair(renderer, fov, sample_change(rng), rng, args.size)
    by_kind: dict[str, list[float]] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(args.pairs):
        rng = np.random.default_rng([0, index])
        change = sample_change(rng)
        started = time.process_time()
        render_pair(renderer, fov, change, rng, args.size)
        by_kind.setdefault(change.kind, []).append(time.process_time() - started)
    wall_per, cpu_per = (time.perf_counter() - wall) / args.pairs, (time.process_time() - cpu) / args.pairs
    print(f"render_pair at {args.size}²: {cpu_per:.3f} s CPU/pair, {wall_per:.3f} s wall/pair (1 thread)")
    for kind, times in sorted(by_kind.items()):
        print(f"  {kind:14s} {np.mean(times):.3f} s CPU/pair over {len(times)}")
    print(f"projected for 2000 pairs on 2 free cores: {2000 * cpu_per / 2 / 60:.1f} min (+ PNG/JSON writing)")
    if args.dataset_pairs:
        with tempfile.TemporaryDirectory() as out:
            wall = time.perf_counter()
            generate_dataset(out, SynthConfig(n=args.dataset_pairs, size=args.size), workers=2, progress=False)
            elapsed = time.perf_counter() - wall
        print(f"generate_dataset, 2 workers, {args.dataset_pairs} pairs: {elapsed:.1f} s wall "
              f"({elapsed / args.dataset_pairs:.2f} s/pair, includes worker start-up and anatomy banks)")


if __name__ == "__main__":
    main()
