"""Grounding: lung-field accuracy on a real film, latency, the report corpus; the VLM grounder on CUDA.

    python benchmarks/bench_grounding.py [--calls 50] [--skip-corpus] [--vlm-source PATH|random] [--vlm-on-cpu]

Landmarks: hand-marked apex, dome and costophrenic angle of pydicom-data's RG1_UNCI.dcm (a real PA chest CR) against
the fitted lung fields, on the film and transformed copies (legend_demo/grounding/landmark_check.py); error =
distance (and its vertical part) in fractions of the analysed image's height.
Latency: lung fields alone, first-release thresholding and the atlas fit side by side on the same images, then
whole `ground()` calls (fields + text + placement + merge; no file decoding), median / p95 over many calls.
Corpus: OpenI (NLMCXR) sentences and PadChest label/localization sentences from the torchxrayvision wheel
(legend_demo/grounding/corpus_check.py) on RG1's fitted fields: share of one-sided sentences with points only on
that side, and side-word points in the other lung (must be 0).
VLM: Qwen2.5-VL in 4-bit NF4 at 512² and 1024² inputs, fixed answer length, after one warm-up call; weights from
LEGEND_QWEN_PATH / checkpoints/qwen2.5-vl-7b-instruct/, or `--vlm-source random` for a randomly initialised
7B-sized model (written to a temporary folder first; needs ~16 GB of disk).
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
from legend_demo.synth.drawing import draw_chest  # noqa: E402

TEXTS = (
    "Interval increase in right lower lobe consolidation with new small left pleural effusion. No pneumothorax.",
    "Bibasilar atelectasis has improved; persistent cardiomegaly.",
    "New RUL opacity and increased left apical pneumothorax; NG tube tip in the stomach.",
)
VLM_SIDES = (512, 1024)
VLM_NEW_TOKENS = 48  # about the length of a two-point JSON answer


def _film(array: np.ndarray, orientation: tuple[str, str] = ("L", "F")):
    from dataclasses import dataclass

    @dataclass
    class Film:
        array: np.ndarray
        original_size: tuple[int, int]
        dicom_info: dict

    return Film(array, (array.shape[1], array.shape[0]), {"PatientOrientation": "\\".join(orientation)})


def bench_landmarks() -> None:
    from legend_demo.grounding.landmark_check import landmark_errors, rg1_array, variants

    print("Lung-field landmarks on RG1_UNCI.dcm vs hand marks: distance / vertical error, fractions of image height")
    names = ("right apex", "right dome", "right costophrenic", "left apex", "left dome", "left costophrenic")
    print("| copy | fields | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    table = {n: [] for n in names}
    for variant in variants(rg1_array()):
        result = ground(_film(variant.array, variant.orientation), "New right lower lobe consolidation.")
        found = {k: tuple(v) for k, v in result.lung_fields.get("landmarks", {}).items()}
        errors = landmark_errors(found, variant.landmarks, variant.array.shape[0])
        for n in names:
            table[n].append(errors.get(n, (np.nan, np.nan)))
        cells = " | ".join(f"{errors[n][0]:.3f} / {errors[n][1]:.3f}" if n in errors else "—" for n in names)
        method = result.lung_fields["method"].split(":")[0] if result.lung_fields["source"] == "image" else "COARSE"
        print(f"| {variant.name} | {method} | {cells} |")
    print("| **mean** | | " + " | ".join(f"{np.nanmean([e[0] for e in table[n]]):.3f} / "
                                         f"{np.nanmean([e[1] for e in table[n]]):.3f}" for n in names) + " |")
    print("| **max** | | " + " | ".join(f"{np.nanmax([e[0] for e in table[n]]):.3f} / "
                                        f"{np.nanmax([e[1] for e in table[n]]):.3f}" for n in names) + " |")


def bench_latency(calls: int) -> None:
    import cv2

    from legend_demo.grounding.landmark_check import rg1_array
    from legend_demo.grounding.lung_cores import dark_cores
    from legend_demo.grounding.lung_fields import estimate_lung_fields

    rg1 = rg1_array()
    images = [("RG1 native 1841×1955", rg1), ("RG1 1024×1024", cv2.resize(rg1, (1024, 1024))),
              ("RG1 512×512", cv2.resize(rg1, (512, 512))), ("RG1 3000×3000", cv2.resize(rg1, (3000, 3000))),
              ("drawn chest 1024×1024", draw_chest(1024, 1024)[0])]
    print(f"\nLung fields, CPU, {calls} calls each, ms (median / p95); side by side in one run")
    print("| image | first-release thresholding | atlas fields (this) | ratio | fields |")
    print("|---|---|---|---|---|")
    for name, image in images:
        old = _times(lambda: dark_cores(image), calls)
        new = _times(lambda: estimate_lung_fields(image), calls)
        source = estimate_lung_fields(image).method.split(":")[0] or "coarse"
        print(f"| {name} | {old[0]:.1f} / {old[1]:.1f} | {new[0]:.1f} / {new[1]:.1f} | "
              f"{new[0] / old[0]:.1f}× | {source} |")
    print(f"\nWhole ground() call (rules), CPU, {calls} calls, three texts in turn, ms (median / p95 / max)")
    print("| image | median | p95 | max |")
    print("|---|---|---|---|")
    for name, image in images:
        film = _film(image)
        ground(film, TEXTS[0])
        counter = iter(range(10 ** 9))
        median, p95, worst = _times(lambda: ground(film, TEXTS[next(counter) % len(TEXTS)]), calls, with_max=True)
        print(f"| {name} | {median:.1f} | {p95:.1f} | {worst:.1f} |")
    long_text = "Interval increase in right lower lobe consolidation. " * 800
    rejected = []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            ground(_film(rg1), long_text)
        except ValueError:
            pass
        rejected.append((time.perf_counter() - started) * 1000)
    print(f"\n{len(long_text)}-character text refused in {statistics.median(rejected):.3f} ms (median, "
          f"max {max(rejected):.3f} ms) before the image is touched")


def _times(call, calls: int, with_max: bool = False):
    call()  # warm-up
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    out = (statistics.median(times), float(np.percentile(times, 95)))
    return out + (max(times),) if with_max else out


def bench_corpus() -> None:
    from legend_demo.grounding.corpus_check import (WHEEL, named_side, nlmcxr_sentences, only_negated,
                                                    padchest_sentences, side_check)
    from legend_demo.grounding.landmark_check import rg1_array
    from legend_demo.grounding.lung_fields import estimate_lung_fields
    from legend_demo.grounding.rules import rule_points

    if not WHEEL.is_file():
        print(f"\nCorpus: skipped ({WHEEL.name} not on this machine)")
        return
    fields = estimate_lung_fields(rg1_array())
    print("\nReport corpus on RG1's fitted fields (sentences naming exactly one side, no 'bilateral'/'both')")
    print("| corpus | one-sided sentences | points only on that side | some point on that side | "
          "side-word points in the other lung | scattered/bilateral-by-nature points there | "
          "negated-only sentences with a point | slowest sentence ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, sentences in (("OpenI / NLMCXR", nlmcxr_sentences()), ("PadChest labels", padchest_sentences())):
        one = [s for s in sentences if named_side(s)]
        checks, slowest = [], 0.0
        for s in one:
            started = time.perf_counter()
            points, _ = rule_points(s, fields)
            slowest = max(slowest, time.perf_counter() - started)
            checks.append(side_check(points, fields, named_side(s)))
        negated = [s for s in sentences if only_negated(s)]
        negated_with_points = sum(bool(rule_points(s, fields)[0]) for s in negated)
        n = len(one)
        print(f"| {name} | {n} | {sum(c.strict for c in checks) / n:.1%} | {sum(c.named > 0 for c in checks) / n:.1%} "
              f"| {sum(c.other_from_side for c in checks)} | {sum(c.other_not_from_side for c in checks)} | "
              f"{negated_with_points} of {len(negated)} | {slowest * 1000:.1f} |")


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
            image = to_pil(draw_chest(side, side)[0])
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
    parser.add_argument("--calls", type=int, default=50, help="calls per image for the latency tables")
    parser.add_argument("--skip-corpus", action="store_true", help="skip the report-corpus table (~40 s)")
    parser.add_argument("--vlm-source", default=None, help="weights folder or hub id, or 'random' (7B-sized)")
    parser.add_argument("--vlm-on-cpu", action="store_true", help="time the VLM on CPU too (smoke test, small models)")
    parser.add_argument("--skip-vlm", action="store_true")
    args = parser.parse_args()
    bench_landmarks()
    bench_latency(args.calls)
    if not args.skip_corpus:
        bench_corpus()
    if not args.skip_vlm:
        bench_vlm(args.vlm_source, args.vlm_on_cpu)


if __name__ == "__main__":
    main()
