"""Benchmark: cost of GBCA (Gaussian key bias + vital-layer K/V injection + attention capture) in the dual-path engine.

Run from the repository root:

    python benchmarks/bench_core.py                      # CPU section (tiny random FLUX), then GPU section if CUDA
    python benchmarks/bench_core.py --repeats 3 --threads 2
    python benchmarks/bench_core.py --steps 8 --layers 4 8 --skip-gpu
    python benchmarks/bench_core.py --gpu-t5             # GPU section also builds a random NF4 T5-XXL encoder

Configurations, timed side by side in one process and interleaved round-robin (the order rotates every repeat,
after one untimed warm-up each), so that machine noise hits all of them alike:

1. stock dual path   — GBCA processors installed but inert: bias_strength=0, inject=False, capture_layers=()
                       (numerically identical to diffusers' stock attention);
2. GBCA, no capture  — bias_strength=2, inject=True, capture_layers=();
3. GBCA + capture    — bias_strength=2, inject=True, capture_layers=None (the vital layers).

Goals: (2) costs at most 10 % over (1) end to end (ratio ≤ 1.10). Capture (3) materialises softmax
probabilities for the captured layers and is reported without a goal. Inversion does not use GBCA, so its
ratio should stay ≈ 1.00 and shows how noisy the run was.

CPU section: the "tiny-random" engine (untrained, output is noise) with more blocks than the tests use
(default 4 double + 8 single), a 64×64 input, 8 steps and two lesion points; medians over --repeats.
Small models treat every layer as vital, so bias, injection and capture hit all 12 layers here (FLUX.1-dev:
10 of 57): a pessimistic case for the overhead.

GPU section (only when torch.cuda.is_available()): a full-size FLUX.1-dev transformer (default config,
guidance_embeds=True) with random weights, saved in bf16 to a temporary folder and reloaded in NF4 through
diffusers.BitsAndBytesConfig (needs bitsandbytes and ≈ 30 GiB free disk, ≈ 25 GiB GPU memory while building);
a random FLUX-shaped VAE; random prompt embeddings (or, with --gpu-t5, a random NF4 T5-XXL encoder);
256² input, 28 steps. Reports seconds per follow-up (inversion + dual path) and torch.cuda.max_memory_allocated.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("LEGEND_ENABLE_TEST_ENGINE", "1")

from legend_demo.engines.base import GenerationRequest  # noqa: E402
from legend_demo.core.points import LesionPoint  # noqa: E402

GOAL_GBCA_RATIO = 1.10
PROGRESSION = "the left lower lobe opacity has grown and a small effusion has appeared"
CONFIGS = {  # label → GenerationRequest overrides
    "stock dual path": {"bias_strength": 0.0, "inject": False, "capture_layers": ()},
    "GBCA (bias + injection), no capture": {"bias_strength": 2.0, "inject": True, "capture_layers": ()},
    "GBCA + capture (vital layers)": {"bias_strength": 2.0, "inject": True, "capture_layers": None},
}
GOALS = {"stock dual path": "baseline", "GBCA (bias + injection), no capture": f"≤ {GOAL_GBCA_RATIO:.2f}"}
PHASES = ("invert", "denoise", "total")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (default 5)")
    parser.add_argument("--steps", type=int, default=8, help="sampling steps on CPU (default 8)")
    parser.add_argument("--layers", type=int, nargs=2, default=(4, 8), metavar=("DOUBLE", "SINGLE"),
                        help="tiny transformer blocks: double-stream and single-stream (default 4 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default 1: the tiny model gains nothing from more, and on a "
                             "shared machine extra OpenMP threads spin and inflate the noise)")
    parser.add_argument("--skip-gpu", action="store_true", help="do not run the GPU section")
    parser.add_argument("--gpu-repeats", type=int, default=3, help="timed runs per configuration on GPU (default 3)")
    parser.add_argument("--gpu-steps", type=int, default=28, help="sampling steps on GPU (default 28)")
    parser.add_argument("--gpu-side", type=int, default=256, help="model side in pixels on GPU (default 256)")
    parser.add_argument("--gpu-t5", action="store_true", help="encode prompts with a random NF4 T5-XXL")
    return parser.parse_args(argv)


# --- shared: inputs, interleaved timing, report ----------------------------------------------------------------
def synthetic_radiograph(side: int, seed: int = 0) -> np.ndarray:
    """A smooth (side, side) image in [0, 1]: two bright 'lungs' on a darker background plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    lungs = np.exp(-((xx - 0.3) ** 2 / 0.02 + (yy - 0.5) ** 2 / 0.08)) + np.exp(-((xx - 0.7) ** 2 / 0.02 + (yy - 0.5) ** 2 / 0.08))
    image = 0.2 + 0.6 * lungs + 0.03 * rng.standard_normal((side, side))
    return np.clip(image, 0, 1).astype(np.float32)


def lesion_points(side: int) -> list[LesionPoint]:
    return [LesionPoint(x=0.30 * side, y=0.60 * side, confidence=5), LesionPoint(x=0.70 * side, y=0.45 * side, confidence=4)]


_calls = itertools.count()


def make_request(side: int, steps: int, overrides: dict) -> GenerationRequest:
    return GenerationRequest(
        image=synthetic_radiograph(side), progression_text=PROGRESSION, points=lesion_points(side), steps=steps, **overrides
    )


def fresh(request: GenerationRequest) -> GenerationRequest:
    """A new source prompt per call, so the engine's inversion cache never skips the inversion being timed."""
    return dataclasses.replace(request, source_text=f"a frontal chest radiograph (call {next(_calls)})")


def time_interleaved(run_one, repeats: int) -> dict[str, list[dict[str, float]]]:
    """run_one(label) → {phase: seconds}; one untimed warm-up per config, then round-robin with a rotating order."""
    labels = list(CONFIGS)
    for label in labels:
        run_one(label)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    for r in range(repeats):
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        for label in order:
            samples[label].append(run_one(label))
        print(f"  repeat {r + 1}/{repeats} done", flush=True)
    return samples


def medians(samples: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {label: {k: statistics.median(s[k] for s in runs) for k in runs[0]} for label, runs in samples.items()}


def print_tables(med: dict[str, dict[str, float]], title: str, extra: dict[str, str] | None = None) -> None:
    stock = med["stock dual path"]
    print(f"\n### {title}\n")
    print("| configuration | median s | ratio vs stock | goal |")
    print("|---|---:|---:|---|")
    for label, m in med.items():
        ratio = m["total"] / stock["total"]
        goal = GOALS.get(label, "—")
        if label in GOALS and label != "stock dual path":
            goal += " ✅" if ratio <= GOAL_GBCA_RATIO else " ❌"
        print(f"| {label} | {m['total']:.3f} | {ratio:.3f} | {goal} |")
    print("\nPhases and resources (median; ratio vs stock in brackets; CPU s = this process's CPU time, "
          "steadier than wall time on a shared machine):\n")
    extra_cols = [k for k in next(iter(med.values())) if k not in PHASES]
    print("| configuration | " + " | ".join(PHASES[:2] + tuple(extra_cols)) + " |")
    print("|---|" + "---:|" * (2 + len(extra_cols)))
    for label, m in med.items():
        cells = [f"{m[p]:.3f} ({m[p] / stock[p]:.2f})" for p in PHASES[:2]]
        cells += [f"{m[k]:.0f}" if "MiB" in k else f"{m[k]:.3f} ({m[k] / stock[k]:.2f})" for k in extra_cols]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for key, value in (extra or {}).items():
        print(f"- {key}: {value}")
    warn_if_noisy(med)


def warn_if_noisy(med: dict[str, dict[str, float]], tolerance: float = 0.05) -> None:
    """Inversion never uses GBCA, so its ratio off 1.00 measures the run's noise, not the method."""
    drift = max(abs(m["invert"] / med["stock dual path"]["invert"] - 1) for m in med.values())
    if drift > tolerance:
        print(f"- WARNING: inversion (identical in every configuration) differs by up to {drift:.0%} between "
              f"configurations: the machine was noisy; rerun with more --repeats before trusting the verdict")


# --- CPU section: tiny random engine --------------------------------------------------------------------------
def run_cpu(args: argparse.Namespace) -> None:
    from legend_demo.engines import tiny

    double, single = args.layers
    engine = tiny.load(num_layers=double, num_single_layers=single, default_steps=args.steps)
    side = engine.model_side
    requests = {label: make_request(side, args.steps, overrides) for label, overrides in CONFIGS.items()}

    def run_one(label: str) -> dict[str, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        result = engine.generate(fresh(requests[label]))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"invert": result.timings_s["invert"], "denoise": result.timings_s["denoise"], "total": wall, "CPU s": cpu}

    print(f"CPU section: tiny random FLUX {double}+{single} blocks ({engine.num_layers} attention layers, "
          f"vital {list(engine.default_vital_layers)}), {side}×{side}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats", flush=True)
    med = medians(time_interleaved(run_one, args.repeats))
    print_tables(med, f"CPU — tiny random FLUX {double}+{single}, {side}², {args.steps} steps, "
                      f"median of {args.repeats} (total = wall time of engine.generate)")


# --- GPU section: full-size FLUX.1-dev transformer with random weights in NF4 ------------------------------------
def random_bf16_on_gpu(build):
    """build() with parameters created directly on the GPU in bf16 (FLUX: 24 GB instead of 48 GB fp32 on the CPU)."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return build()
    finally:
        torch.set_default_dtype(previous)


def save_random(model, folder: Path) -> Path:
    """Write the random bf16 weights so that from_pretrained can reload them quantized (the caller drops the model)."""
    model.save_pretrained(folder, max_shard_size="5GB")
    return folder


def nf4_transformer(workdir: Path):
    """Random full-size FLUX.1-dev transformer (19 + 38 blocks, guidance embedding), reloaded in NF4."""
    from diffusers import BitsAndBytesConfig, FluxTransformer2DModel

    folder = save_random(random_bf16_on_gpu(lambda: FluxTransformer2DModel(guidance_embeds=True)), workdir / "flux")
    torch.cuda.empty_cache()  # the bf16 copy is gone once save_random returns
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    return FluxTransformer2DModel.from_pretrained(folder, quantization_config=quant, torch_dtype=torch.bfloat16).eval()


def flux_vae():
    """Random AutoencoderKL with FLUX.1-dev's shape (16 latent channels, ×8 downsampling) in bf16 on the GPU."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=16,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    ).to("cuda", torch.bfloat16).eval()


def random_text_encoder(text_len: int = 512, seed: int = 0):
    """Prompts → fixed random (B, T, 4096) T5-shaped embeddings and (B, 768) pooled CLIP-shaped vectors."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    embeds = torch.randn(1, text_len, 4096, generator=generator)
    pooled = torch.randn(1, 768, generator=generator)

    def encode(prompts: list[str]):
        n = len(prompts)
        return embeds.expand(n, -1, -1).cuda(), pooled.expand(n, -1).cuda()

    return encode


def nf4_t5_encoder(workdir: Path, text_len: int = 512):
    """Random T5-XXL encoder (t5-v1_1-xxl shape) reloaded in NF4; prompts → embeddings of random token ids."""
    from transformers import BitsAndBytesConfig, T5Config, T5EncoderModel

    config = T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                      feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    folder = save_random(random_bf16_on_gpu(lambda: T5EncoderModel(config)), workdir / "t5-xxl")
    torch.cuda.empty_cache()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    t5 = T5EncoderModel.from_pretrained(folder, quantization_config=quant, dtype=torch.bfloat16).eval()
    pooled = torch.randn(1, 768)

    @torch.no_grad()
    def encode(prompts: list[str]):
        generator = torch.Generator(device="cpu").manual_seed(len(prompts))
        ids = torch.randint(0, config.vocab_size, (len(prompts), text_len), generator=generator).cuda()
        return t5(input_ids=ids).last_hidden_state, pooled.expand(len(prompts), -1).cuda()

    return encode


def gpu_editor(args: argparse.Namespace, workdir: Path):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from legend_demo.method.codecs import FluxLatentCodec
    from legend_demo.method.dual_path import DualPathEditor
    from legend_demo.engines.dual_path import FLUX_DEV_VITAL_LAYERS

    scheduler = FlowMatchEulerDiscreteScheduler(  # FLUX.1-dev's scheduler config
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096
    )
    encode = nf4_t5_encoder(workdir) if args.gpu_t5 else random_text_encoder()
    editor = DualPathEditor(
        transformer=nf4_transformer(workdir),
        codec=FluxLatentCodec(flux_vae(), vae_scale_factor=8),
        encode_text=encode,
        scheduler_config=dict(scheduler.config),
        guidance_scale=3.5,
        model_side=args.gpu_side,
    )
    return editor, FLUX_DEV_VITAL_LAYERS


def run_gpu(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("\nGPU section skipped: no CUDA")
        return
    if args.skip_gpu:
        print("\nGPU section skipped: --skip-gpu")
        return
    print(f"\nGPU section: {torch.cuda.get_device_name()} — building random FLUX.1-dev (NF4); this takes minutes", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-flux-") as tmp:
        t0 = time.perf_counter()
        editor, vital = gpu_editor(args, Path(tmp))
        build_s = time.perf_counter() - t0
    requests = {label: make_request(args.gpu_side, args.gpu_steps, o) for label, o in CONFIGS.items()}

    def run_one(label: str) -> dict[str, float]:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = editor.run(fresh(requests[label]), vital, args.gpu_steps)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2**20
        return {"invert": out.timings_s["invert"], "denoise": out.timings_s["denoise"], "total": wall, "peak MiB": peak}

    med = medians(time_interleaved(run_one, args.gpu_repeats))
    weights = torch.cuda.memory_allocated() / 2**20
    print_tables(med, f"GPU — random FLUX.1-dev NF4, {args.gpu_side}², {args.gpu_steps} steps, "
                      f"median of {args.gpu_repeats} (total = seconds per follow-up: encode + inversion + dual path + decode)",
                 {"build (random init + save + NF4 reload)": f"{build_s:.0f} s",
                  "memory allocated at rest (weights)": f"{weights:.0f} MiB",
                  "text encoder": "random NF4 T5-XXL" if args.gpu_t5 else "random fixed embeddings (no T5)"})


def quiet_libraries() -> None:
    """Silence per-call warnings (e.g. the tiny tokenizers' truncation notice) that would bury the tables."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def main(argv=None) -> None:
    args = parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {sys.version.split()[0]}")
    run_cpu(args)
    run_gpu(args)


if __name__ == "__main__":
    main()
