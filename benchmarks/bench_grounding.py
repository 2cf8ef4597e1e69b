"""Grounding latency: the rules grounder per call on CPU; the VLM grounder (warm) and peak memory on CUDA.

    python benchmarks/bench_grounding.py [--calls 200] [--vlm-source PATH|random] [--vlm-on-cpu]

Rules: median and p95 over many calls on drawn chests of several sizes (lung fields + text + placement + merge;
no file decoding). VLM: Qwen2.5-VL in 4-bit NF4 at 512² and 1024² inputs, fixed answer length, after one
warm-up call; weights from LEGEND_QWEN_PATH / checkpoints/qwen2.5-vl-7b-instruct/, or `--vlm-source random`
for a randomly initialised 7B-sized model (written to a temporary folder first; needs ~16 GB of disk).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from legend_demo.grounding import ground  # noqa: E402
from legend_demo.grounding.synthetic import synthetic_chest  # noqa: E402

RULE_SIZES = ((512, 512), (1024, 1024), (2048, 2500), (3000, 3000))
TEXTS = (
    "Interval increase in right lower lobe consolidation with new small left pleural effusion. No pneumothorax.",
    "Bibasilar atelectasis has improved; persistent cardiomegaly.",
    "New RUL opacity and increased left apical pneumothorax; NG tube tip in the stomach.",
)
VLM_SIDES = (512, 1024)
VLM_NEW_TOKENS = 48  # about the length of a two-point JSON answer


def bench_rules(calls: int) -> None:
    print(f"Rules grounder, CPU, {calls} calls per size (median / p95 / max, ms per call)")
    print("| image (W×H) | median ms | p95 ms | max ms | lung fields |")
    print("|---|---|---|---|---|")
    for width, height in RULE_SIZES:
        chest = synthetic_chest(width, height)[0]
        first = ground(chest, TEXTS[0])  # warm-up (imports, regex compilation)
        times = []
        for index in range(calls):
            started = time.perf_counter()
            ground(chest, TEXTS[index % len(TEXTS)])
            times.append((time.perf_counter() - started) * 1000)
        fields = "coarse" if any("coarse" in w for w in first.warnings) else "found"
        print(f"| {width}×{height} | {statistics.median(times):.1f} | {np.percentile(times, 95):.1f} | "
              f"{max(times):.1f} | {fields} |")


def bench_vlm(source: str | None, on_cpu: bool) -> None:
    import torch

    if not torch.cuda.is_available() and not on_cpu:
        print("\nVLM grounder: skipped: no CUDA")
        return
    from legend_demo.grounding.vlm import QwenPointModel, VlmSettings, to_pil

    with tempfile.TemporaryDirectory() as scratch:
        if source == "random":
            source = _random_qwen_7b(Path(scratch))
        settings = VlmSettings.from_env()
        settings = VlmSettings(source=source or settings.source, timeout_s=600, max_new_tokens=VLM_NEW_TOKENS,
                               max_pixels=1024 * 1024, load_in_4bit=settings.load_in_4bit)
        started = time.perf_counter()
        model = QwenPointModel.load(settings)
        print(f"\nVLM grounder: {settings.source} loaded in {time.perf_counter() - started:.1f} s "
              f"({'4-bit NF4' if settings.load_in_4bit and torch.cuda.is_available() else 'unquantised'})")
        print(f"| input | seen by the model | warm ms (≤ {VLM_NEW_TOKENS} new tokens) | peak GPU GB |")
        print("|---|---|---|---|")
        for side in VLM_SIDES:
            image = to_pil(synthetic_chest(side, side)[0])
            model.ask(image, TEXTS[0])  # warm-up
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(3):
                started = time.perf_counter()
                answer = model.ask(image, TEXTS[0])
                times.append((time.perf_counter() - started) * 1000)
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
            seen = "×".join(str(v) for v in answer.seen_size)
            print(f"| {side}² | {seen} | {statistics.median(times):.0f} | {peak:.2f} |")


def _random_qwen_7b(folder: Path) -> str:
    """Qwen2.5-VL-7B-sized config with random weights and a stand-in tokenizer with Qwen's special-token ids."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from legend_demo.grounding.vlm import _image_processor_class

    specials = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
                "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|image_pad|>": 151655,
                "<|video_pad|>": 151656}
    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for index in range(len(vocab), 151643):
        vocab[f"<unused_{index}>"] = index
    for index in range(151643, 151665):
        vocab.setdefault(next((t for t, i in specials.items() if i == index), f"<reserved_{index}>"), index)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(specials))
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>"
                            ).save_pretrained(folder)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                         rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}, rope_theta=1000000.0,
                         bos_token_id=151643, eos_token_id=151645),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31]),
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly: ~16 GB of RAM instead of ~32 GB
    try:
        model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(folder)
    del model
    _image_processor_class()(min_pixels=56 * 56, max_pixels=1024 * 1024).save_pretrained(folder)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="rules-grounder calls per image size")
    parser.add_argument("--vlm-source", default=None, help="weights folder or hub id, or 'random' (7B-sized)")
    parser.add_argument("--vlm-on-cpu", action="store_true", help="time the VLM on CPU too (smoke test, small models)")
    parser.add_argument("--skip-vlm", action="store_true")
    args = parser.parse_args()
    bench_rules(args.calls)
    if not args.skip_vlm:
        bench_vlm(args.vlm_source, args.vlm_on_cpu)


if __name__ == "__main__":
    main()
