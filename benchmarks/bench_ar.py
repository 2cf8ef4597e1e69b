"""LeGend AR speed: KV-cached sampling with GBCA off and on (same run, round-robin), and the teacher-forcing
profiling pass.

    python benchmarks/bench_ar.py [--repeats 15] [--threads 1] [--grid 12] [--steps 600] [--gpu] [--emu3 PATH]

CPU section (always): a small random Emu3 built in code (no downloads; output is noise, timing only), batched CFG
(2 rows), GBCA at the model's mid-depth layers with s = 1 vs s = 0 vs no GBCA state at all: whole follow-ups
(round-robin repeats) and single decoding forwards alternating step by step (the steadier ratio on a busy CPU).
Goal: sampling time with GBCA ≤ 1.10× without.
GPU section (--gpu, needs CUDA + bitsandbytes; skipped with a line otherwise): Emu3-Gen-sized random weights (or
--emu3 PATH) in NF4 at 256² (32×32 tokens): seconds per follow-up, tokens/s, peak GPU memory, profiling pass time.
Thesis: ≈ 41 s per follow-up on an A6000; goal ≤ 15 s on an H100/H200 with KV cache and batched CFG.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def grid_rows(backbone, grid: tuple[int, int], seed: int = 0):
    """A random X_A on `grid`, the [conditional; unconditional] prefixes and a prior bump in the grid's centre."""
    import torch

    from legend_demo.ar.sequence import build_prefix, make_batch

    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, backbone.vocab.codebook_size, (grid[0] * grid[1],), generator=g)
    texts = ["interval increase of right lower lobe consolidation", "a frontal chest radiograph"]
    prefixes, layouts = zip(*(build_prefix(backbone.vocab, backbone.encode_text, codes, t, grid) for t in texts))
    ii, jj = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
    sigma = 0.1 * min(grid)
    prior = torch.exp(-((ii - grid[0] / 2) ** 2 + (jj - grid[1] / 2) ** 2) / (2 * sigma**2)).reshape(-1)
    return codes, make_batch(list(prefixes), list(layouts), backbone.vocab.pad), prior


def sampling_times(backbone, grid, repeats: int, layers, strengths: dict[str, float]) -> dict[str, list[float]]:
    """Decode seconds (after the prefill) per variant, variants interleaved and their order alternated per repeat."""
    import torch

    from legend_demo.ar.attention import ARGBCAState
    from legend_demo.ar.sampling import SamplingOptions, sample_follow_up

    codes, batch, prior = grid_rows(backbone, grid)
    length = batch.ids.shape[1] + batch.layouts[0].b_length
    options = SamplingOptions(guidance_scale=3.0, top_k=2048)
    times: dict[str, list[float]] = {name: [] for name in strengths}
    names = list(strengths)
    for i in range(repeats + 1):  # the first round warms up
        for name in names if i % 2 == 0 else list(reversed(names)):
            state = None if strengths[name] is None else ARGBCAState.for_batch(
                batch, length, backbone.num_layers, prior, strengths[name], layers, ())
            with torch.no_grad():
                out = sample_follow_up(backbone, batch, state, options, seed=i, reference_codes=codes)
            if i:
                times[name].append(out.seconds / out.tokens)
    return times


def interleaved_step_times(backbone, grid, layers, strengths: dict[str, float | None], steps: int) -> dict[str, list[float]]:
    """Seconds of each KV-cached decoding forward (2 CFG rows), the variants alternating step by step on their own
    caches, so that load from other processes hits them alike (the same tokens are fed to every variant)."""
    import torch

    from legend_demo.ar.attention import ARGBCAState
    from legend_demo.ar.sequence import position_ids

    codes, batch, prior = grid_rows(backbone, grid)
    length = batch.ids.shape[1] + steps
    feed = backbone.vocab.to_tokens(codes.repeat(steps // codes.numel() + 1)[:steps])  # (steps,) visual tokens
    runs = {}
    with torch.no_grad():
        for name, strength in strengths.items():
            state = None if strength is None else ARGBCAState.for_batch(batch, length, backbone.num_layers, prior,
                                                                        strength, layers, ())
            mask = batch.attention_mask.clone()
            positions = position_ids(mask)
            _, cache = backbone.forward(batch.ids, mask, positions, None, state, logits_to_keep=1, use_cache=True)
            runs[name] = [state, cache, mask, positions[:, -1:]]
        times: dict[str, list[float]] = {name: [] for name in strengths}
        names = list(strengths)
        for t in range(steps):
            for name in names[t % len(names):] + names[: t % len(names)]:
                state, cache, mask, position = runs[name]
                mask = torch.cat([mask, mask.new_ones((2, 1))], dim=1)
                position = position + 1
                token = feed[t].reshape(1, 1).expand(2, 1)
                t0 = time.perf_counter()
                backbone.forward(token, mask, position, cache, state, logits_to_keep=1, use_cache=True)
                times[name].append(time.perf_counter() - t0)
                runs[name][2:] = [mask, position]
    return times


def profiling_time(backbone, grid, repeats: int, layers) -> float:
    """Median seconds of one teacher-forcing pass capturing every layer (GBCA on)."""
    import torch

    from legend_demo.ar.profiling import teacher_forcing_attention

    codes, _, prior = grid_rows(backbone, grid)
    follow = torch.roll(codes, 1)
    seconds = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        teacher_forcing_attention(backbone, codes, follow, "interval increase of right lower lobe consolidation", grid,
                                  prior, 1.0, layers, range(backbone.num_layers))
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds[1:])


def cpu_section(args) -> None:
    import torch

    from legend_demo.ar.backbone import ARBackbone
    from legend_demo.ar.tiny import tiny_emu3
    from legend_demo.engines.ar import default_gbca_layers

    torch.set_num_threads(args.threads)
    model, tokenizer = tiny_emu3(num_layers=8, hidden=64, heads=4, kv_heads=2, codebook=256, seed=0)
    backbone = ARBackbone.from_model(model, tokenizer)
    grid = (args.grid, args.grid)
    layers = default_gbca_layers(backbone.num_layers)
    variants = {"GBCA off (s = 0)": 0.0, f"GBCA on (s = 1, layers {list(layers)})": 1.0, "stock SDPA (no GBCA state)": None}
    times = sampling_times(backbone, grid, args.repeats, layers, variants)
    tokens = grid[0] * (grid[1] + 1)
    (off_name, off), (on_name, on), (stock_name, stock) = times.items()
    print(f"CPU, tiny random Emu3 (8 layers, hidden 64, GQA 4/2), {grid[0]}×{grid[1]} grid = {tokens} tokens per follow-up, "
          f"CFG batched (2 rows), {args.threads} thread(s), {args.repeats} round-robin repeats; best = fastest repeat "
          "(least disturbed by other processes), median = typical\n")
    print("| variant | tokens/s best | tokens/s median | time ratio best | time ratio median | goal |\n"
          "|---|---:|---:|---:|---:|---|")
    print(f"| {off_name} | {1 / min(off):.1f} | {1 / statistics.median(off):.1f} | 1.000 | 1.000 | |")
    print(f"| {on_name} | {1 / min(on):.1f} | {1 / statistics.median(on):.1f} | {min(on) / min(off):.3f} | "
          f"{statistics.median(on) / statistics.median(off):.3f} | ≤ 1.10 |")
    print(f"| {stock_name} | {1 / min(stock):.1f} | {1 / statistics.median(stock):.1f} | {min(stock) / min(off):.3f} | "
          f"{statistics.median(stock) / statistics.median(off):.3f} | |")
    steps = interleaved_step_times(backbone, grid, layers, variants, args.steps)
    off_sum, on_sum, stock_sum = (sum(v) for v in steps.values())
    print(f"\nKV-cached decoding forward only (2 CFG rows), the three variants alternating step by step, {args.steps} steps each:\n")
    print("| variant | forward steps/s | time ratio |\n|---|---:|---:|")
    print(f"| {off_name} | {args.steps / off_sum:.1f} | 1.000 |")
    print(f"| {on_name} | {args.steps / on_sum:.1f} | {on_sum / off_sum:.3f} |")
    print(f"| {stock_name} | {args.steps / stock_sum:.1f} | {stock_sum / off_sum:.3f} |")
    print(f"\nteacher-forcing profiling pass (all {backbone.num_layers} layers captured, GBCA on): "
          f"{profiling_time(backbone, grid, args.repeats, layers):.3f} s\n")


def emu3_gen_sized(folder: Path):
    """Emu3-Gen-sized random weights (default Emu3Config: 32 layers, hidden 4096, vocab 184,622, codebook 32,768)
    saved to `folder` with the tiny tokenizer's scheme (Emu3 special tokens + 32,768 visual tokens)."""
    import torch
    from transformers import Emu3Config, Emu3ForConditionalGeneration

    from legend_demo.ar.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer(codebook=32768)
    config = Emu3Config(vocabulary_map=dict(tokenizer.get_vocab()),
                        text_config={"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                                     "eos_token_id": tokenizer.eos_token_id})
    with torch.device("cuda"):
        model = Emu3ForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def gpu_section(args) -> None:
    import importlib.util

    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("GPU section skipped: no CUDA device here.")
        return
    if importlib.util.find_spec("bitsandbytes") is None:
        print("GPU section skipped: bitsandbytes is not installed (pip install -r requirements.txt).")
        return
    from legend_demo.engines.ar import LeGendAREngine
    from legend_demo.engines.base import GenerationRequest
    from legend_demo.core.points import LesionPoint

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        source = args.emu3 or str(emu3_gen_sized(Path(tmp) / "emu3-random"))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine = LeGendAREngine.from_pretrained(source, quantization="nf4", device="cuda")
        load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    image = (0.3 + 0.4 * rng.random((512, 512))).astype(np.float32)
    request = dict(image=image, progression_text="interval increase of right lower lobe consolidation",
                   points=[LesionPoint(180, 300)], bias_strength=1.0)
    engine.generate(GenerationRequest(**request, seed=99))  # warm-up
    torch.cuda.reset_peak_memory_stats()
    seconds, rates = [], []
    for seed in range(args.repeats):
        t0 = time.perf_counter()
        result = engine.generate(GenerationRequest(**request, seed=seed))
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
        rates.append(result.timings_s["tokens_per_s"])
    peak = torch.cuda.max_memory_allocated() / 2**30
    profile_s = profiling_time(engine.backbone, engine.token_grid, max(args.repeats // 2, 1), engine.default_vital_layers)
    weights = "given checkpoint" if args.emu3 else f"random weights (built and saved in {build_s:.0f} s)"
    print(f"GPU {torch.cuda.get_device_name()}, Emu3-Gen-sized model, NF4, {weights}, 256² → "
          f"{engine.token_grid[0]}×{engine.token_grid[1]} tokens, CFG batched, GBCA at {list(engine.default_vital_layers)}\n")
    print("| measure | value | goal |\n|---|---:|---|")
    print(f"| load (NF4) | {load_s:.1f} s | |")
    print(f"| seconds per follow-up (median of {args.repeats}) | {statistics.median(seconds):.2f} s | ≤ 15 s (thesis ≈ 41 s, A6000) |")
    print(f"| decode tokens/s | {statistics.median(rates):.1f} | |")
    print(f"| peak GPU memory | {peak:.1f} GiB | |")
    print(f"| teacher-forcing profiling pass, all layers | {profile_s:.2f} s | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", type=int, default=12, help="CPU section: token grid side (12 → 156 tokens)")
    parser.add_argument("--steps", type=int, default=600, help="CPU section: interleaved decoding steps per variant")
    parser.add_argument("--gpu", action="store_true", help="also run the GPU section (CUDA + bitsandbytes)")
    parser.add_argument("--emu3", default=None, help="GPU section: an Emu3-Gen folder instead of random weights")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1 or args.grid < 2 or args.steps < 1:
        parser.error("--repeats, --threads and --steps must be ≥ 1 and --grid ≥ 2")
    cpu_section(args)
    if args.gpu:
        gpu_section(args)
    else:
        print("GPU section not requested (--gpu).")


if __name__ == "__main__":
    main()
