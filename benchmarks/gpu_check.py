"""One prepared device check: LeGend-Diffusion at FLUX.1-dev's size, a Qwen2.5-VL-7B-sized grounder and an
Emu3-Gen-sized AR engine, every model randomly initialised directly on the GPU (no weights, no network).

    python benchmarks/gpu_check.py --out DIR                  # full size on one CUDA GPU (≤ 8 min on an H200)
    python benchmarks/gpu_check.py --smoke --out DIR          # the same code paths on tiny configs, CPU, ≤ 60 s
    python benchmarks/gpu_check.py --out DIR --sections emu3  # rerun one section

RANDOM WEIGHTS: every figure is a speed or memory figure only. No follow-up image or grounding answer this
check produces means anything, and the quality goals cannot be judged here.

Sections (each a child process with its own time box, run one after another; one that fails, crashes or runs
out of time leaves the others' figures; each writes DIR/<section>.json after every measurement, so a killed
section keeps what it had):
- flux: FluxTransformer2DModel with FLUX.1-dev's published config (19 double + 38 single blocks, width
  24 × 128 = 3072, 64 input channels, guidance embedding, RoPE axes 16/56/56), a T5-XXL-sized encoder
  (t5-v1_1-xxl: 24 layers, d_model 4096, d_ff 10240, 64 heads), a CLIP-L-sized text encoder and the FLUX VAE,
  assembled into a FluxPipeline and driven through `LeGendDiffusionEngine.generate` (engines/flux.py →
  engines/dual_path.py → method/dual_path.py → processors.py), i.e. inversion + dual-path denoise at the
  engine's default steps with GBCA at the vital layers, then the composite onto a 2048×2500 film. Variants: NF4 (transformer and T5
  quantized as the engine's `quantization_config("nf4")` says, in memory — see `to_nf4`) and bf16. Per
  variant: the invariants at full size (zero bias = stock attention; full injection with equal rows = the
  source row; the bias changes the edit row and leaves the source row alone), single transformer forwards
  (diffusers' own processors vs GBCA inert / on / with capture), and seconds per follow-up at 256² and 512²
  for stock (processors inert), GBCA (bias + injection) and GBCA + capture (what the page runs), with peak
  GPU memory.
- qwen: Qwen2.5-VL-7B-Instruct's configuration, NF4 as grounding/vlm.py loads it, behind the real `ground()`
  (`/ground`'s path): latency and peak memory of one call at the configured max pixels and new tokens, and at
  a typical answer length. Random weights answer garbage, so `ground` falls back to the rules grounder, as it
  would in production; the latency is the VLM's.
- emu3: Emu3-Gen's configuration (transformers' Emu3Config defaults: 32 layers, width 4096, vocabulary
  184,622, VQ codebook 32,768) in NF4 as engines/ar.py loads it, through `LeGendAREngine.generate` at 256²
  (32×32 tokens, guided, KV cache): seconds per follow-up and tokens/s with GBCA on and off.
Each section ends with a loader pass: the engine's real `from_pretrained` (NF4 on CUDA) on a shallow
full-width checkpoint written to scratch, then one call.

Random init: modules are built under `torch.device(device)` with bf16 as the default dtype, so parameters are
created and default-initialised on the GPU (12B parameters in seconds, nothing on the host). NF4 without
weights on disk: `to_nf4` swaps each nn.Linear for bitsandbytes' Linear4bit and quantizes its bf16 weight
with `Params4bit(...).to(device)` — what diffusers' and transformers' bitsandbytes loaders do per weight,
with their rules for which modules stay unquantized.

--smoke: the same functions on tiny configs on the CPU (NF4 included: bitsandbytes ≥ 0.46 quantizes on the
CPU); the sections run side by side there (no device to share). Written: DIR/gpu_check.json (sections
`flux`, `qwen`, `emu3` plus `meta`), DIR/gpu_check.md (the table, also printed last), DIR/<section>.json and
DIR/<section>.log.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

SECTIONS = ("flux", "qwen", "emu3")
RANDOM_NOTE = ("random weights built on the device: speed and memory figures only; no image or answer produced "
               "here means anything")
GPU_BOXES = {"flux": 210.0, "qwen": 85.0, "emu3": 135.0}  # seconds per section, start-ups included: 7.2 min
SMOKE_BOXES = {"flux": 600.0, "qwen": 600.0, "emu3": 600.0}  # side by side on the CPU; ≈ 20 s each when idle:
# the box only stops a hung section (on a busy shared CPU imports alone can take a minute)
LOADER_NEEDS_S = {"flux": 35.0, "qwen": 30.0, "emu3": 40.0}  # seconds left in the box to start a loader pass
CHILD_GRACE_S = 25.0  # after its box a section is killed; it stops starting work well before that
GOALS = {"flux_nf4_256_s": 3.0, "flux_nf4_256_gb": 18.0, "gbca_ratio": 1.10, "qwen_warm_s": 1.5, "emu3_s": 15.0}
PROGRESSION = "new right lower lobe consolidation, left effusion has increased"
GB = 1e9


# ----------------------------------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the full-size check and --smoke."""

    flux_transformer: dict
    flux_vae: dict
    clip: dict
    t5: dict
    t5_tokens: int  # tokenizer_2.model_max_length = the engine's max_sequence_length (FLUX.1-dev: 512)
    flux_sides: tuple[int, ...]
    flux_steps: int | None  # None: the engine's default (28)
    forward_repeats: int
    max_repeats: int
    qwen_text: dict
    qwen_vision: dict
    qwen_first_special: int  # Qwen2.5's special tokens start at id 151643
    qwen_max_pixels: int | None  # None: LEGEND_QWEN_MAX_PIXELS (1024·28·28)
    qwen_new_tokens: int | None  # None: LEGEND_QWEN_MAX_NEW_TOKENS (256)
    qwen_typical_tokens: int
    emu3_text: dict
    emu3_vq: dict
    emu3_codebook: int
    emu3_vocab_is_tokenizer: bool  # smoke: the text vocabulary is the tokenizer's (Emu3-Gen: 184,622)
    emu3_side: int
    film_size: tuple[int, int]  # (W, H) of the prior film the follow-up is composited onto
    shallow: dict  # depth overrides for the loader pass


FULL = Sizes(
    # FLUX.1-dev transformer/config.json (diffusers layout)
    flux_transformer=dict(patch_size=1, in_channels=64, out_channels=None, num_layers=19, num_single_layers=38,
                          attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                          pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=(16, 56, 56)),
    # FLUX.1-dev vae/config.json
    flux_vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                  layers_per_block=2, act_fn="silu", latent_channels=16, norm_num_groups=32, sample_size=1024,
                  scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False,
                  force_upcast=True, mid_block_add_attention=True),
    # openai/clip-vit-large-patch14's text model (FLUX.1-dev text_encoder)
    clip=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
              max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu"),
    # google/t5-v1_1-xxl's encoder (FLUX.1-dev text_encoder_2)
    t5=dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
            feed_forward_proj="gated-gelu", relative_attention_num_buckets=32, relative_attention_max_distance=128,
            layer_norm_epsilon=1e-6, is_encoder_decoder=False),
    t5_tokens=512,
    flux_sides=(256, 512),
    flux_steps=None,
    forward_repeats=6,
    max_repeats=3,
    # Qwen/Qwen2.5-VL-7B-Instruct config.json
    qwen_text=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                   num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                   rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}, rope_theta=1000000.0),
    qwen_vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                     fullatt_block_indexes=[7, 15, 23, 31]),
    qwen_first_special=151643,
    qwen_max_pixels=None,
    qwen_new_tokens=None,
    qwen_typical_tokens=64,
    emu3_text={},  # transformers' Emu3TextConfig defaults are Emu3-Gen's (32 layers, 4096, GQA 32/8, 184,622)
    emu3_vq={},  # Emu3VQVAEConfig defaults (codebook 32,768, spatial factor 8)
    emu3_codebook=32768,
    emu3_vocab_is_tokenizer=False,
    emu3_side=256,
    film_size=(2048, 2500),
    shallow=dict(flux_double=1, flux_single=1, t5_layers=2, qwen_layers=2, qwen_depth=2, emu3_layers=2),
)

SMOKE = Sizes(
    flux_transformer=dict(patch_size=1, in_channels=4, out_channels=None, num_layers=2, num_single_layers=3,
                          attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                          pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 4, 8)),
    flux_vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(4, 4), layers_per_block=1,
                  latent_channels=1, norm_num_groups=1, sample_size=64, scaling_factor=1.5035, shift_factor=0.0609,
                  use_quant_conv=False, use_post_quant_conv=False),
    clip=dict(vocab_size=128, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
              max_position_embeddings=77, projection_dim=32),
    t5=dict(vocab_size=128, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
            is_encoder_decoder=False),
    t5_tokens=64,
    flux_sides=(64, 128),
    flux_steps=3,
    forward_repeats=2,
    max_repeats=1,
    qwen_text=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, max_position_embeddings=4096,
                   rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]}),
    qwen_vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
                     spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1]),
    qwen_first_special=256,
    qwen_max_pixels=28 * 28 * 64,
    qwen_new_tokens=12,
    qwen_typical_tokens=6,
    emu3_text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=4096, attention_dropout=0.0,
                   rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    emu3_vq=dict(codebook_size=32, embed_dim=4, latent_channels=4, base_channels=32, channel_multiplier=[1, 1],
                 num_res_blocks=1, attn_resolutions=[], temporal_downsample_factor=4, hidden_size=32),
    emu3_codebook=32,
    emu3_vocab_is_tokenizer=True,
    emu3_side=16,
    film_size=(256, 320),
    shallow=dict(flux_double=1, flux_single=1, t5_layers=1, qwen_layers=1, qwen_depth=1, emu3_layers=1),
)


# ------------------------------------------------------------------------------------------- recording, time
class Record:
    """One section's results, rewritten to DIR/<section>.json after every change (a killed section keeps them)."""

    def __init__(self, path: Path, section: str, smoke: bool):
        self.path = path
        self.data: dict[str, Any] = {"section": section, "status": "running", "smoke": smoke, "note": RANDOM_NOTE,
                                     "notes": [], "skipped": [], "errors": []}
        self.save()

    def set(self, *keys_and_value: Any) -> None:
        """set("a", "b", value) → data["a"]["b"] = value."""
        *keys, value = keys_and_value
        node = self.data
        for key in keys[:-1]:
            node = node.setdefault(str(key), {})
        node[str(keys[-1])] = value
        self.save()

    def get(self, *keys: Any, default: Any = None) -> Any:
        node = self.data
        for key in keys:
            if not isinstance(node, dict) or str(key) not in node:
                return default
            node = node[str(key)]
        return node

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        self.save()

    def skip(self, what: str, why: str) -> None:
        self.data["skipped"].append(f"{what}: {why}")
        say(self.data["section"], f"skipped {what} ({why})")
        self.save()

    def error(self, where: str, exc: BaseException) -> None:
        """A failed step: one line in the JSON, the traceback in the log; the section goes on with its next step."""
        line = f"{where}: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        self.data["errors"].append(line)
        say(self.data["section"], f"FAILED {line}")
        traceback.print_exc()
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=_plain))
        os.replace(tmp, self.path)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class Clock:
    """A section's time box: work is started only while the box still has room for it."""

    def __init__(self, box_s: float):
        self.start = time.perf_counter()
        self.box_s = box_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self, share: float = 1.0) -> float:
        """Seconds left until `share` of the box has passed."""
        return self.start + share * self.box_s - time.perf_counter()


_T0 = time.perf_counter()


def say(section: str, message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f} s] {section}: {message}", flush=True)


@contextlib.contextmanager
def step(rec: Record, where: str):
    """Run one independent step: a failure is recorded and the section continues."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 — a failed step must not lose the section's other figures
        rec.error(where, exc)
        free_memory()


# ----------------------------------------------------------------------------------------- device helpers
def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gb() -> float | None:
    """Peak GPU memory allocated by tensors since reset_peak (GB = 1e9 bytes, the goals' unit); None on CPU."""
    import torch

    return round(torch.cuda.max_memory_allocated() / GB, 3) if torch.cuda.is_available() else None


def allocated_gb() -> float | None:
    import torch

    return round(torch.cuda.memory_allocated() / GB, 3) if torch.cuda.is_available() else None


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def parameter_count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


@contextlib.contextmanager
def built_on(device: str, dtype):
    """Modules built inside create (and default-initialise) their parameters directly on `device` in `dtype`."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def random_model(build: Callable[[], Any], device: str, dtype, seed: int = 0):
    """build() with random weights created on `device` in `dtype`, in eval mode, without gradients."""
    import torch

    torch.manual_seed(seed)
    with built_on(device, dtype):
        model = build()
    return model.eval().requires_grad_(False)


def meta_parameter_count(build: Callable[[], Any]) -> int:
    """Parameters of build() constructed on the meta device (no memory): checks a config's size anywhere."""
    import torch

    with torch.device("meta"):
        return parameter_count(build())


# --------------------------------------------------------------------------------------------------- NF4
def diffusers_skip(name: str, patterns: list[str]) -> bool:
    """diffusers' replace_with_bnb_linear rule: a module stays unquantized when a pattern names it or a parent."""
    return any(key + "." in name or key == name or name.rsplit(".", 1)[-1] == key for key in patterns)


def transformers_skip(name: str, patterns: list[str]) -> bool:
    """transformers' own rule (quantizers_utils.should_convert_module), imported so the versions cannot drift."""
    from transformers.quantizers.quantizers_utils import should_convert_module

    return not should_convert_module(name, patterns)


def transformers_skip_patterns(model, configured: list[str] | None) -> list[str]:
    """What transformers' bitsandbytes quantizer leaves unquantized: the configured skip list (else the output
    head, tied and last modules) plus the class's keep-in-fp32 modules."""
    from transformers.quantizers.base import get_keys_to_not_convert

    patterns = list(configured) if configured is not None else list(get_keys_to_not_convert(model))
    return sorted(set(patterns) | set(getattr(model, "_keep_in_fp32_modules", None) or ()))


def to_nf4(model, compute_dtype, skip: Callable[[str], bool], double_quant: bool = False) -> dict[str, int]:
    """Swap every nn.Linear that `skip` does not name for bitsandbytes Linear4bit NF4, quantized from its weights.

    Per weight this is what the bitsandbytes loaders do (diffusers' create_quantized_param, transformers'
    Bnb4bitHfQuantizer): a Linear4bit built on the meta device, then `Params4bit(weight, **its settings)
    .to(device)`, which quantizes (blocks of 64, absmax statistics) on that device. The bf16 weight is freed.
    """
    import bitsandbytes as bnb
    import torch

    counts = {"quantized": 0, "kept": 0}
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            full = f"{parent_name}.{name}" if parent_name else name
            if skip(full):
                counts["kept"] += 1
                continue
            with torch.device("meta"):
                layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                          compute_dtype=compute_dtype, compress_statistics=double_quant,
                                          quant_type="nf4")
            weight = child.weight.data
            layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, **layer.weight.__dict__).to(weight.device)
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            layer.requires_grad_(False)
            setattr(parent, name, layer)
            counts["quantized"] += 1
    return counts


def count_linear4bit(model, under: str = "") -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for n, m in model.named_modules() if n.startswith(under))


# ----------------------------------------------------------------------------------------------- inputs
def film_and_points(size: tuple[int, int]):
    """A synthetic frontal chest film (W×H) in [0, 1] and two lesion points in its pixels."""
    from legend_demo.core.points import LesionPoint
    from legend_demo.synth.drawing import draw_chest

    width, height = size
    film, _, _ = draw_chest(width, height)
    points = [LesionPoint(x=0.30 * width, y=0.66 * height, confidence=5),
              LesionPoint(x=0.70 * width, y=0.45 * height, confidence=4)]
    return film, points


_calls = iter(range(10**9))


def fresh_source_text() -> str:
    """A new source prompt per call, so the engine's inversion cache never skips an inversion being timed."""
    return f"a frontal chest radiograph (call {next(_calls)})"


def loader_saved(rec: "Record", device: str, started: float) -> str | None:
    """After a loader pass wrote its shallow checkpoint (started at `started`): free the in-memory copy, record the
    save time, and say how the engine will load it — NF4 on CUDA, unquantized on the CPU (noted)."""
    free_memory()
    rec.set("loader", "save_s", round(time.perf_counter() - started, 2))
    if device != "cuda":
        rec.note("loader: NF4 loading needs CUDA, so the CPU pass loads unquantized (float32)")
        return None
    return "nf4"


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(fn(), wall seconds with the device synchronised, peak GPU GB during the call)."""
    reset_peak()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0, peak_gb()


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "n": len(values),
            "all": [round(v, 4) for v in values]}


def environment() -> dict[str, Any]:
    """Versions and the device, for the JSON (read by each section; the runner itself imports no torch)."""
    import importlib.metadata as md

    import torch

    versions = {}
    for name in ("torch", "diffusers", "transformers", "accelerate", "bitsandbytes", "peft", "safetensors",
                 "tokenizers", "huggingface_hub", "numpy", "opencv-python-headless", "scipy", "pillow"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    env = {"python": platform.python_version(), "packages": versions, "device": device_kind(),
           "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        env.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda, gpu_total_gb=round(total / GB, 1),
                   gpu_free_gb_at_start=round(free / GB, 1), capability=list(torch.cuda.get_device_capability()))
    return env


# =============================================================================================== flux
FLUX_SCHEDULER = dict(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096, max_shift=1.15,
                      num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True)  # FLUX.1-dev scheduler
FLUX_CONFIGS = {  # label → GenerationRequest overrides, timed side by side (bench_core's three configurations)
    "stock": {"bias_strength": 0.0, "inject": False, "capture_layers": ()},  # processors inert = stock attention
    "gbca": {"bias_strength": None, "inject": True, "capture_layers": ()},  # s(τ) bias + injection, vital layers
    "gbca_capture": {"bias_strength": None, "inject": True, "capture_layers": None},  # + maps: what the page runs
}


def flux_components(sizes: Sizes, device: str, dtype, shallow: bool = False) -> dict[str, Any]:
    """Random FluxPipeline components at `sizes` (shallow: the loader pass's 1 + 1 blocks, 2 T5 layers)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from legend_demo.core.tiny import tiny_tokenizer

    tok_clip, tok_t5 = tiny_tokenizer(77), tiny_tokenizer(sizes.t5_tokens)  # offline stand-ins; lengths are FLUX's
    transformer_cfg, t5_cfg = copy.deepcopy(sizes.flux_transformer), copy.deepcopy(sizes.t5)
    if shallow:
        transformer_cfg.update(num_layers=sizes.shallow["flux_double"], num_single_layers=sizes.shallow["flux_single"])
        t5_cfg.update(num_layers=sizes.shallow["t5_layers"])
    ids = dict(bos_token_id=tok_clip.bos_token_id, eos_token_id=tok_clip.eos_token_id,
               pad_token_id=tok_clip.pad_token_id)
    return dict(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=random_model(lambda: AutoencoderKL(**copy.deepcopy(sizes.flux_vae)), device, dtype, seed=1),
        text_encoder=random_model(lambda: CLIPTextModel(CLIPTextConfig(**copy.deepcopy(sizes.clip), **ids)), device,
                                  dtype, seed=2),
        tokenizer=tok_clip,
        text_encoder_2=random_model(lambda: T5EncoderModel(T5Config(**t5_cfg, pad_token_id=tok_t5.pad_token_id,
                                                                    eos_token_id=tok_t5.eos_token_id)),
                                    device, dtype, seed=3),
        tokenizer_2=tok_t5,
        transformer=random_model(lambda: FluxTransformer2DModel(**transformer_cfg), device, dtype, seed=4),
    )


def quantize_pipeline_nf4(pipe) -> dict[str, Any]:
    """NF4 for the components the engine's quantization_config("nf4") names, with its quant settings."""
    from legend_demo.engines.flux import quantization_config

    config = quantization_config("nf4")
    kwargs = config.quant_kwargs
    if kwargs.get("bnb_4bit_quant_type") != "nf4":
        raise ValueError(f"the engine's NF4 config is {kwargs}")
    done = {}
    for name in config.components_to_quantize:
        model = getattr(pipe, name)
        if hasattr(model, "get_output_embeddings"):  # a transformers model (T5): transformers' rule
            patterns = transformers_skip_patterns(model, None)
            skip = lambda full, p=patterns: transformers_skip(full, p)  # noqa: E731
        else:  # a diffusers model (the transformer): diffusers' rule, nothing kept for FLUX
            patterns = list(getattr(model, "_keep_in_fp32_modules", None) or [])
            skip = lambda full, p=patterns: diffusers_skip(full, p)  # noqa: E731
        counts = to_nf4(model, kwargs["bnb_4bit_compute_dtype"], skip, kwargs.get("bnb_4bit_use_double_quant", False))
        done[name] = {**counts, "kept_patterns": patterns}
    free_memory()
    return done


def flux_engine(pipe, side: int, steps: int | None):
    from legend_demo.engines.flux import LeGendDiffusionEngine

    options = {"default_steps": steps} if steps else {}
    return LeGendDiffusionEngine(pipe, checkpoint="random FLUX.1-dev-sized weights (speed/memory only)",
                                 model_side=side, **options)


def transformer_inputs(transformer, codec, side: int, text_len: int, same_rows: bool, device, dtype, seed: int = 0):
    """Random inputs of the engine's shapes for a [source; edit] batch: (2, N_img, C) latents, (2, T, J) text."""
    import torch

    from legend_demo.method.codecs import image_ids

    cfg = transformer.config
    grid = codec.token_grid(side)
    g = torch.Generator(device="cpu").manual_seed(seed)
    rows = 1 if same_rows else 2
    x = torch.randn(rows, grid[0] * grid[1], cfg.in_channels, generator=g).repeat(2 // rows, 1, 1)
    text = torch.randn(rows, text_len, cfg.joint_attention_dim, generator=g).repeat(2 // rows, 1, 1)
    pooled = torch.randn(rows, cfg.pooled_projection_dim, generator=g).repeat(2 // rows, 1)
    put = dict(device=device, dtype=dtype)
    return dict(hidden_states=x.to(**put), encoder_hidden_states=text.to(**put), pooled_projections=pooled.to(**put),
                timestep=torch.full((2,), 0.6, **put), img_ids=image_ids(grid, device, dtype),
                txt_ids=torch.zeros(text_len, 3, **put), guidance=torch.full((2,), 3.5, **put), return_dict=False)


def relative_error(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def flux_invariants(pipe, engine, side: int, vital: tuple[int, ...], tolerance: float) -> dict[str, Any]:
    """The tests' invariants at this size: zero bias = stock, injection with equal rows = source, bias is live."""
    import torch

    from legend_demo.core.points import LesionPoint
    from legend_demo.method.prior import gaussian_prior
    from legend_demo.method.processors import GBCAState, gbca_installed

    transformer, codec = pipe.transformer, engine.editor.codec
    device, dtype = engine.editor.device, engine.editor.dtype
    layers = frozenset(range(engine.num_layers))
    grid = codec.token_grid(side)
    prior = torch.from_numpy(gaussian_prior([LesionPoint(0.3 * side, 0.6 * side)], (side, side), grid, 0.1).reshape(-1))
    text_len = engine.max_sequence_length

    def run(state=None, same_rows=False):
        inputs = transformer_inputs(transformer, codec, side, text_len, same_rows, device, dtype)
        with torch.no_grad():
            if state is None:
                return transformer(**inputs)[0].float()
            with gbca_installed(transformer, state):
                return transformer(**inputs)[0].float()

    stock = run()
    zero = run(GBCAState(prior=prior, strength=0.0, bias_layers=layers, capture_layers=frozenset(vital)))
    same = run(GBCAState(prior=prior, strength=0.0, bias_layers=layers, inject_layers=layers), same_rows=True)
    biased = run(GBCAState(prior=prior, strength=2.0, bias_layers=frozenset(vital)))
    checks = {
        "zero_bias_equals_stock": relative_error(zero, stock),
        "injection_edit_equals_source": relative_error(same[1], same[0]),
        "bias_leaves_source_row": relative_error(biased[0], stock[0]),
    }
    result = {name: {"relative_error": round(err, 6), "pass": err <= tolerance} for name, err in checks.items()}
    change = relative_error(biased[1], stock[1])
    result["bias_changes_edit_row"] = {"relative_change": round(change, 6), "pass": change > 1e-3}
    result["finite"] = {"pass": bool(all(torch.isfinite(t).all() for t in (stock, zero, same, biased)))}
    result["tolerance"] = tolerance
    result["all_pass"] = all(v["pass"] for v in result.values() if isinstance(v, dict))
    return result


def flux_forwards(pipe, engine, side: int, vital: tuple[int, ...], repeats: int) -> dict[str, Any]:
    """Seconds of one transformer forward on a [source; edit] batch: diffusers' processors vs GBCA, interleaved."""
    import torch

    from legend_demo.core.points import LesionPoint
    from legend_demo.method.prior import gaussian_prior
    from legend_demo.method.processors import GBCAState, gbca_installed

    transformer, codec = pipe.transformer, engine.editor.codec
    grid = codec.token_grid(side)
    prior = torch.from_numpy(gaussian_prior([LesionPoint(0.3 * side, 0.6 * side)], (side, side), grid, 0.1).reshape(-1))
    vital = frozenset(vital)
    states = {
        "diffusers processors": None,
        "GBCA inert (s = 0)": lambda: GBCAState(prior=prior, strength=0.0, bias_layers=vital),
        "GBCA (bias + injection)": lambda: GBCAState(prior=prior, strength=2.0, bias_layers=vital, inject_layers=vital),
        "GBCA + capture": lambda: GBCAState(prior=prior, strength=2.0, bias_layers=vital, inject_layers=vital,
                                            capture_layers=vital),
    }
    inputs = transformer_inputs(transformer, codec, side, engine.max_sequence_length, False,
                                engine.editor.device, engine.editor.dtype)

    def once(make) -> float:
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            if make is None:
                transformer(**inputs)
            else:
                with gbca_installed(transformer, make()):
                    transformer(**inputs)
        sync()
        return time.perf_counter() - t0

    for make in states.values():  # warm-up
        once(make)
    times: dict[str, list[float]] = {name: [] for name in states}
    names = list(states)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(once(states[name]))
    base = statistics.median(times["diffusers processors"])
    return {name: {**summary(v), "ratio_vs_diffusers": round(statistics.median(v) / base, 4)}
            for name, v in times.items()}


def flux_followups(engine, film, points, steps: int | None, clock: Clock, share: float, max_repeats: int,
                   rec: Record, key: tuple) -> float:
    """Seconds per follow-up (engine.generate: encode + inversion + dual path + decode + composite) per config,
    the configs round-robin after one untimed warm-up; returns the slowest follow-up's seconds."""
    import numpy as np

    from legend_demo.engines.base import GenerationRequest

    def request(label: str):
        return GenerationRequest(image=film, progression_text=PROGRESSION, source_text=fresh_source_text(),
                                 points=points, steps=steps, **FLUX_CONFIGS[label])

    def run(label: str) -> dict[str, Any]:
        result, wall, peak = timed(lambda: engine.generate(request(label)))
        finite = bool(np.isfinite(result.followup).all())
        return {"s": wall, "peak_gb": peak, "timings": result.timings_s, "finite": finite,
                "steps": result.provenance.parameters["steps"]}

    warm = run("gbca_capture")  # cold: kernel selection, cuBLAS / bitsandbytes set-up; not counted
    rec.set(*key, "warm_up_s", round(warm["s"], 3))
    rec.set(*key, "steps", warm["steps"])
    estimate = warm["s"]
    samples: dict[str, list[dict]] = {label: [] for label in FLUX_CONFIGS}
    labels = list(FLUX_CONFIGS)
    for r in range(max_repeats):
        if r > 0 and clock.left(share) < 1.3 * len(labels) * estimate:
            rec.skip(f"{'/'.join(map(str, key))} repeat {r + 1}", "time box")
            break
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            samples[label].append(run(label))
        estimate = max(s["s"] for runs in samples.values() for s in runs)
        rec.set(*key, "configs", _followup_table(samples))
        say("flux", f"{'/'.join(map(str, key))}: repeat {r + 1} done ({estimate:.2f} s per follow-up at most)")
    return estimate


def _followup_table(samples: dict[str, list[dict]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for label, runs in samples.items():
        if not runs:
            continue
        phases = {phase: round(statistics.median(r["timings"].get(phase, 0.0) for r in runs), 4)
                  for phase in ("encode", "invert", "denoise", "decode", "film")}
        peaks = [r["peak_gb"] for r in runs if r["peak_gb"] is not None]
        table[label] = {"s_per_followup": summary([r["s"] for r in runs]), "phases_s": phases,
                        "peak_gb": max(peaks) if peaks else None, "finite": all(r["finite"] for r in runs)}
    if "stock" in table:
        stock = table["stock"]["s_per_followup"]["median"]
        for label, row in table.items():
            row["ratio_vs_stock"] = round(row["s_per_followup"]["median"] / stock, 4)
    if "gbca" in table and "gbca_capture" in table:
        table["capture_overhead"] = round(table["gbca_capture"]["s_per_followup"]["median"]
                                          / table["gbca"]["s_per_followup"]["median"], 4)
    return table


def flux_variant(variant: str, sizes: Sizes, device: str, clock: Clock, share: float, rec: Record) -> None:
    """Build, (quantize,) check invariants, time forwards and follow-ups for one precision; free it all after."""
    import torch
    from diffusers import FluxPipeline

    from legend_demo.engines.dual_path import FLUX_DEV_VITAL_LAYERS

    dtype = torch.bfloat16
    say("flux", f"{variant}: building random components on {device}")
    free_memory()
    reset_peak()
    t0 = time.perf_counter()
    pipe = FluxPipeline(**flux_components(sizes, device, dtype))
    sync()
    rec.set("variants", variant, "build_s", round(time.perf_counter() - t0, 2))
    if variant == "nf4":
        t0 = time.perf_counter()
        rec.set("variants", variant, "quantized", quantize_pipeline_nf4(pipe))
        sync()
        rec.set("variants", variant, "quantize_s", round(time.perf_counter() - t0, 2))
    rec.set("variants", variant, "weights_gb", allocated_gb())
    engines = {side: flux_engine(pipe, side, sizes.flux_steps) for side in sizes.flux_sides}
    first = engines[sizes.flux_sides[0]]
    vital = first.default_vital_layers
    rec.set("vital_layers", list(vital))
    rec.set("num_layers", first.num_layers)
    if first.num_layers == 57 and vital != FLUX_DEV_VITAL_LAYERS:
        rec.note(f"57 layers but vital layers {vital} are not the thesis's {FLUX_DEV_VITAL_LAYERS}")
    say("flux", f"{variant}: built ({rec.get('variants', variant, 'weights_gb')} GB allocated); invariants")
    side = sizes.flux_sides[0]
    with step(rec, f"{variant} invariants"):
        tolerance = 2e-2  # bf16 (NF4 computes in bf16 too); relative L2 error
        rec.set("variants", variant, "invariants", flux_invariants(pipe, first, side, vital, tolerance))
    with step(rec, f"{variant} forwards"):
        rec.set("variants", variant, "forward_s", flux_forwards(pipe, first, side, vital, sizes.forward_repeats))
    film, points = film_and_points(sizes.film_size)
    needed = 0.0  # seconds the next side's warm-up and first round need (the last side's × its token growth)
    for i, side in enumerate(sizes.flux_sides):
        if clock.left(share) <= needed:
            rec.skip(f"{variant} {side}²", f"time box ({clock.left(share):.0f} s left, ≈ {needed:.0f} s needed)")
            continue
        say("flux", f"{variant}: follow-ups at {side}²")
        repeats = sizes.max_repeats if i == 0 else 1
        with step(rec, f"{variant} {side}² follow-ups"):
            slowest = flux_followups(engines[side], film, points, sizes.flux_steps, clock, share, repeats, rec,
                                     ("variants", variant, "followups", side))
            needed = 4 * slowest * 3  # warm-up + 3 configs; 4× the image tokens ≈ 3× the time (text is fixed)
    del engines, first, pipe
    free_memory()


def flux_loader(sizes: Sizes, device: str, scratch: Path, rec: Record) -> None:
    """The engine's real from_pretrained (NF4 on CUDA) on a shallow full-width FluxPipeline folder, then one call."""
    import numpy as np
    import torch
    from diffusers import FluxPipeline

    from legend_demo.engines.base import GenerationRequest
    from legend_demo.engines.flux import LeGendDiffusionEngine

    folder = scratch / "flux-shallow"
    pipe = FluxPipeline(**flux_components(sizes, device, torch.bfloat16, shallow=True))
    t0 = time.perf_counter()
    pipe.save_pretrained(folder)
    del pipe
    quantization = loader_saved(rec, device, t0)
    t0 = time.perf_counter()
    side = sizes.flux_sides[0]
    engine = LeGendDiffusionEngine.from_pretrained(str(folder), quantization=quantization, device=device,
                                                   model_side=side, default_steps=2)
    rec.set("loader", "load_s", round(time.perf_counter() - t0, 2))
    rec.set("loader", "quantization", quantization)
    if quantization:
        rec.set("loader", "linear4bit", {"transformer": count_linear4bit(engine.pipe.transformer),
                                         "text_encoder_2": count_linear4bit(engine.pipe.text_encoder_2)})
    film, points = film_and_points(sizes.film_size)
    result, wall, peak = timed(lambda: engine.generate(GenerationRequest(image=film, progression_text=PROGRESSION,
                                                                         points=points)))
    placement = {name: str(next(getattr(engine.pipe, name).parameters()).device)
                 for name in ("transformer", "text_encoder", "text_encoder_2", "vae")}
    rec.set("loader", "generate_s", round(wall, 3))
    rec.set("loader", "peak_gb", peak)
    rec.set("loader", "placement", placement)
    rec.set("loader", "ok", bool(np.isfinite(result.followup).all()))


def flux_section(sizes: Sizes, clock: Clock, rec: Record, scratch: Path) -> None:
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    device = device_kind()
    rec.set("config", {"transformer": sizes.flux_transformer, "vae": sizes.flux_vae, "clip_text": sizes.clip,
                       "t5_encoder": sizes.t5, "scheduler": FLUX_SCHEDULER, "text_tokens": sizes.t5_tokens,
                       "sides": list(sizes.flux_sides), "steps": sizes.flux_steps or "engine default",
                       "film": list(sizes.film_size), "configs": FLUX_CONFIGS})
    rec.set("parameters", {
        "transformer": meta_parameter_count(lambda: FluxTransformer2DModel(**copy.deepcopy(sizes.flux_transformer))),
        "t5_encoder": meta_parameter_count(lambda: T5EncoderModel(T5Config(**copy.deepcopy(sizes.t5)))),
        "clip_text": meta_parameter_count(lambda: CLIPTextModel(CLIPTextConfig(**copy.deepcopy(sizes.clip)))),
        "vae": meta_parameter_count(lambda: AutoencoderKL(**copy.deepcopy(sizes.flux_vae))),
    })
    loader_share = 1 - LOADER_NEEDS_S["flux"] / clock.box_s
    shares = (0.55, loader_share) if device == "cuda" else (1.0, 1.0)  # NF4 (the product's default) first
    for variant, share in zip(("nf4", "bf16"), shares):
        if clock.left(share) <= 0:
            rec.skip(f"variant {variant}", "time box")
            continue
        with step(rec, f"variant {variant}"):
            flux_variant(variant, sizes, device, clock, share, rec)
    if clock.left() > LOADER_NEEDS_S["flux"]:
        with step(rec, "loader"):
            say("flux", "loader: from_pretrained on a shallow full-width checkpoint")
            flux_loader(sizes, device, scratch, rec)
    else:
        rec.skip("loader", "time box")


# =============================================================================================== qwen
QWEN_SPECIALS = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<|vision_start|>": 9, "<|vision_end|>": 10,
                 "<|image_pad|>": 12, "<|video_pad|>": 13}  # offsets from Qwen2.5's first special id (151643)


def qwen_tokenizer(first_special: int):
    """Byte-level stand-in tokenizer with Qwen2.5's special tokens at Qwen's ids (first_special + offset)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for index in range(len(vocab), first_special):
        vocab[f"<unused_{index}>"] = index
    for token, offset in QWEN_SPECIALS.items():
        vocab[token] = first_special + offset
    for index in range(first_special, first_special + 22):
        if index not in vocab.values():
            vocab[f"<reserved_{index}>"] = index
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(QWEN_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def qwen_config(sizes: Sizes, tokenizer, shallow: bool = False):
    from transformers import Qwen2_5_VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    text, vision = copy.deepcopy(sizes.qwen_text), copy.deepcopy(sizes.qwen_vision)  # configs edit nested dicts
    if shallow:
        text["num_hidden_layers"] = sizes.shallow["qwen_layers"]
        vision.update(depth=sizes.shallow["qwen_depth"], fullatt_block_indexes=[sizes.shallow["qwen_depth"] - 1])
    text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                            vision_end_token_id=ids["<|vision_end|>"])


def qwen_settings(sizes: Sizes, folder: Path, new_tokens: int | None = None):
    """Set LEGEND_QWEN_* as an operator would (weights folder; smoke sizes; new tokens) and read them back."""
    os.environ["LEGEND_QWEN_PATH"] = str(folder)
    if sizes.qwen_max_pixels is not None:
        os.environ["LEGEND_QWEN_MAX_PIXELS"] = str(sizes.qwen_max_pixels)
    tokens = new_tokens or sizes.qwen_new_tokens
    if tokens is None:
        os.environ.pop("LEGEND_QWEN_MAX_NEW_TOKENS", None)  # the configured default
    else:
        os.environ["LEGEND_QWEN_MAX_NEW_TOKENS"] = str(tokens)
    from legend_demo.grounding.vlm import VlmSettings

    return VlmSettings.from_env()


class StepCounter:
    """Counts forward calls of the LM head during generate(): the prefill plus one per further new token."""

    def __init__(self, head):
        self.calls = 0
        self.handle = head.register_forward_hook(self.hook)

    def hook(self, *_):
        self.calls += 1


def qwen_section(sizes: Sizes, clock: Clock, rec: Record, scratch: Path) -> None:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from legend_demo.grounding import ground, vlm

    device = device_kind()
    tokenizer = qwen_tokenizer(sizes.qwen_first_special)
    config = qwen_config(sizes, tokenizer)
    rec.set("config", {"text": sizes.qwen_text, "vision": sizes.qwen_vision})
    rec.set("parameters", meta_parameter_count(lambda: Qwen2_5_VLForConditionalGeneration(config)))
    folder = scratch / "qwen-config"  # what LEGEND_QWEN_PATH names: the config; the weights are in memory
    config.save_pretrained(folder)
    settings = qwen_settings(sizes, folder)
    rec.set("settings", {"max_pixels": settings.max_pixels, "max_new_tokens": settings.max_new_tokens,
                         "timeout_s": settings.timeout_s, "load_in_4bit": settings.load_in_4bit})
    say("qwen", f"building a random Qwen2.5-VL ({rec.get('parameters') / 1e9:.2f} B parameters) on {device}")
    reset_peak()
    t0 = time.perf_counter()
    model = random_model(lambda: Qwen2_5_VLForConditionalGeneration(config), device, torch.bfloat16)
    sync()
    rec.set("build_s", round(time.perf_counter() - t0, 2))
    if settings.load_in_4bit:  # grounding/vlm.py: BitsAndBytesConfig(load_in_4bit, nf4, bf16 compute), no skip list
        patterns = transformers_skip_patterns(model, None)
        t0 = time.perf_counter()
        counts = to_nf4(model, torch.bfloat16, lambda name: transformers_skip(name, patterns))
        sync()
        rec.set("quantized", {**counts, "kept_patterns": patterns, "quantize_s": round(time.perf_counter() - t0, 2)})
        free_memory()
    rec.set("weights_gb", allocated_gb())
    processor = vlm._image_processor_class()(min_pixels=56 * 56, max_pixels=settings.max_pixels)
    film, _ = film_and_points(sizes.film_size)
    counter = StepCounter(model.get_output_embeddings())

    def ground_call(new_tokens: int | None) -> dict[str, Any]:
        """One `ground(film, text, "vlm")` with the in-memory model behind the settings the environment gives."""
        settings_now = qwen_settings(sizes, folder, new_tokens)
        vlm._models[settings_now] = vlm.QwenPointModel(tokenizer, processor, model, settings_now)
        counter.calls = 0
        result, wall, peak = timed(lambda: ground(film, PROGRESSION, "vlm"))
        return {"s": round(wall, 4), "peak_gb": peak, "max_new_tokens": settings_now.max_new_tokens,
                "lm_forward_calls": counter.calls, "grounder": result.grounder, "points": len(result.points),
                "warnings": result.warnings[:2]}

    for name, tokens in (("configured", None), ("typical", sizes.qwen_typical_tokens)):
        say("qwen", f"/ground at {tokens or settings.max_new_tokens} new tokens ({name})")
        with step(rec, f"ground {name}"):
            cold = ground_call(tokens)
            rec.set("ground", name, "cold", cold)
            warm = []
            for _ in range(max(1, sizes.max_repeats - 1)):
                if clock.left() - LOADER_NEEDS_S["qwen"] < 1.5 * cold["s"]:
                    rec.skip(f"ground {name} warm repeat", "time box")
                    break
                warm.append(ground_call(tokens))
            if warm:
                rec.set("ground", name, "warm", {**summary([w["s"] for w in warm]), "runs": warm,
                                                 "max_new_tokens": cold["max_new_tokens"]})
    counter.handle.remove()
    vlm.forget_models()
    model = None  # frees the GPU for the loader pass
    free_memory()
    if clock.left() > LOADER_NEEDS_S["qwen"]:
        with step(rec, "loader"):
            qwen_loader(sizes, device, scratch, tokenizer, processor, rec)
    else:
        rec.skip("loader", "time box")


def qwen_loader(sizes: Sizes, device: str, scratch: Path, tokenizer, processor, rec: Record) -> None:
    """grounding/vlm.py's real QwenPointModel.load (NF4 on CUDA) on a shallow full-width checkpoint, then one call."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from legend_demo.grounding import vlm

    folder = scratch / "qwen-shallow"
    say("qwen", "loader: QwenPointModel.load on a shallow full-width checkpoint")
    model = random_model(lambda: Qwen2_5_VLForConditionalGeneration(qwen_config(sizes, tokenizer, shallow=True)),
                         device, torch.bfloat16)
    t0 = time.perf_counter()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    free_memory()
    rec.set("loader", "save_s", round(time.perf_counter() - t0, 2))
    settings = qwen_settings(sizes, folder, sizes.qwen_typical_tokens)
    t0 = time.perf_counter()
    point_model = vlm.QwenPointModel.load(settings)
    rec.set("loader", "load_s", round(time.perf_counter() - t0, 2))
    rec.set("loader", "quantized_4bit", device == "cuda" and settings.load_in_4bit)
    if device == "cuda":
        rec.set("loader", "linear4bit", count_linear4bit(point_model.model))
    film, _ = film_and_points(sizes.film_size)
    answer, wall, peak = timed(lambda: point_model.ask(vlm.to_pil(film), PROGRESSION))
    rec.set("loader", "ask_s", round(wall, 3))
    rec.set("loader", "seen_size", list(answer.seen_size))
    rec.set("loader", "ok", isinstance(answer.text, str))
    point_model = None
    free_memory()


# =============================================================================================== emu3
def emu3_model_and_tokenizer(sizes: Sizes, device: str, dtype, shallow: bool = False):
    from transformers import Emu3Config, Emu3ForConditionalGeneration

    from legend_demo.ar.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer(codebook=sizes.emu3_codebook)  # Emu3's special tokens + one token per VQ code
    text = dict(copy.deepcopy(sizes.emu3_text), pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if sizes.emu3_vocab_is_tokenizer:
        text["vocab_size"] = len(tokenizer)
    if shallow:
        text["num_hidden_layers"] = sizes.shallow["emu3_layers"]
    config = Emu3Config(vq_config=dict(copy.deepcopy(sizes.emu3_vq), codebook_size=sizes.emu3_codebook),
                        text_config=text, vocabulary_map=dict(tokenizer.get_vocab()))
    if device == "meta":
        return Emu3ForConditionalGeneration(config), tokenizer
    return random_model(lambda: Emu3ForConditionalGeneration(config), device, dtype), tokenizer


def emu3_section(sizes: Sizes, clock: Clock, rec: Record, scratch: Path) -> None:
    import torch

    from legend_demo.ar.backbone import ARBackbone
    from legend_demo.engines.ar import LeGendAREngine, bnb_config
    from legend_demo.engines.base import GenerationRequest

    device = device_kind()
    with torch.device("meta"):
        meta_model, _ = emu3_model_and_tokenizer(sizes, "meta", None)
    rec.set("parameters", {"total": parameter_count(meta_model),
                           "vq_tokenizer": parameter_count(meta_model.model.vqmodel)})
    rec.set("config", {"text": meta_model.config.text_config.to_dict(), "vq_codebook": sizes.emu3_codebook,
                       "side": sizes.emu3_side})
    del meta_model
    say("emu3", f"building a random Emu3-Gen-sized model ({rec.get('parameters', 'total') / 1e9:.2f} B) on {device}")
    reset_peak()
    t0 = time.perf_counter()
    model, tokenizer = emu3_model_and_tokenizer(sizes, device, torch.bfloat16)
    sync()
    rec.set("build_s", round(time.perf_counter() - t0, 2))
    config = bnb_config("nf4")  # what LeGendAREngine.from_pretrained loads with: VQ tokenizer and lm_head kept
    patterns = transformers_skip_patterns(model, config.llm_int8_skip_modules)
    t0 = time.perf_counter()
    counts = to_nf4(model, config.bnb_4bit_compute_dtype, lambda name: transformers_skip(name, patterns))
    sync()
    rec.set("quantized", {**counts, "kept_patterns": patterns, "quantize_s": round(time.perf_counter() - t0, 2),
                          "linear4bit_in_vq": count_linear4bit(model, "model.vqmodel")})
    free_memory()
    rec.set("weights_gb", allocated_gb())
    backbone = ARBackbone.from_model(model, tokenizer)
    engine = LeGendAREngine(backbone, checkpoint="random Emu3-Gen-sized weights (speed/memory only)",
                            model_side=sizes.emu3_side)
    rec.set("gbca_layers", list(engine.default_vital_layers))
    rec.set("token_grid", list(engine.token_grid))
    film, points = film_and_points(sizes.film_size)
    factor = backbone.codec.factor
    with step(rec, "warm-up"):  # kernels and caches on a 4×4-token follow-up (same code, a fraction of the time)
        small = LeGendAREngine(backbone, checkpoint="warm-up", model_side=4 * factor)
        _, wall, _ = timed(lambda: small.generate(GenerationRequest(image=film, progression_text=PROGRESSION,
                                                                    points=points)))
        rec.set("warm_up_s", round(wall, 3))
    variants = {"gbca_on": None, "gbca_off": 0.0}  # None: the engine's s_ℓ (untrained MLP, as shipped); 0: off
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    estimate = None
    for r in range(2):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            if estimate is not None and clock.left() - LOADER_NEEDS_S["emu3"] < 1.2 * estimate:
                rec.skip(f"{name} repeat {r + 1}", "time box")
                continue
            say("emu3", f"follow-up {name} (repeat {r + 1})")
            with step(rec, f"follow-up {name}"):
                request = GenerationRequest(image=film, progression_text=PROGRESSION, points=points, seed=r,
                                            bias_strength=variants[name])
                result, wall, peak = timed(lambda: engine.generate(request))
                estimate = wall
                samples[name].append({"s": wall, "tokens_per_s": result.timings_s["tokens_per_s"], "peak_gb": peak,
                                      "timings": result.timings_s})
                rec.set("followups", _emu3_table(samples))
    engine = backbone = model = None  # frees the GPU for the loader pass
    free_memory()
    if clock.left() > LOADER_NEEDS_S["emu3"]:
        with step(rec, "loader"):
            emu3_loader(sizes, device, scratch, rec)
    else:
        rec.skip("loader", "time box")


def _emu3_table(samples: dict[str, list[dict]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, runs in samples.items():
        if runs:
            peaks = [r["peak_gb"] for r in runs if r["peak_gb"] is not None]
            table[name] = {"s_per_followup": summary([r["s"] for r in runs]),
                           "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 2),
                           "sample_s": round(statistics.median(r["timings"]["sample"] for r in runs), 4),
                           "peak_gb": max(peaks) if peaks else None}
    if "gbca_on" in table and "gbca_off" in table:
        table["ratio_on_off"] = round(table["gbca_on"]["sample_s"] / table["gbca_off"]["sample_s"], 4)
    return table


def emu3_loader(sizes: Sizes, device: str, scratch: Path, rec: Record) -> None:
    """engines/ar.py's real from_pretrained (NF4 on CUDA) on a shallow full-width Emu3 folder, then one call."""
    import numpy as np
    import torch

    from legend_demo.engines.ar import LeGendAREngine
    from legend_demo.engines.base import GenerationRequest

    say("emu3", "loader: from_pretrained on a shallow full-width checkpoint")
    folder = scratch / "emu3-shallow"
    model, tokenizer = emu3_model_and_tokenizer(sizes, device, torch.bfloat16, shallow=True)
    small_side = 4 * int(model.model.vqmodel.spatial_scale_factor)  # a 4×4-token follow-up: the loader is the point
    t0 = time.perf_counter()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    quantization = loader_saved(rec, device, t0)
    t0 = time.perf_counter()
    engine = LeGendAREngine.from_pretrained(str(folder), quantization=quantization, device=device,
                                            model_side=small_side)
    rec.set("loader", "load_s", round(time.perf_counter() - t0, 2))
    rec.set("loader", "quantization", quantization)
    if quantization:
        model = engine.backbone.model
        rec.set("loader", "linear4bit", {"all": count_linear4bit(model),
                                         "vq_tokenizer": count_linear4bit(model, "model.vqmodel"),
                                         "lm_head": count_linear4bit(model, "lm_head")})
    film, points = film_and_points(sizes.film_size)
    result, wall, peak = timed(lambda: engine.generate(GenerationRequest(image=film, progression_text=PROGRESSION,
                                                                         points=points)))
    rec.set("loader", "generate_s", round(wall, 3))
    rec.set("loader", "peak_gb", peak)
    rec.set("loader", "ok", bool(np.isfinite(result.followup).all()))


# ============================================================================================ one section
SECTION_FUNCTIONS = {"flux": flux_section, "qwen": qwen_section, "emu3": emu3_section}


def run_section(name: str, out: Path, smoke: bool, box_s: float) -> int:
    """Child process: one section, its JSON rewritten as it goes; exit code 0 even when steps failed (recorded)."""
    rec = Record(out / f"{name}.json", name, smoke)
    clock = Clock(box_s)
    try:
        import torch

        if smoke:
            torch.set_num_threads(1)  # sections run side by side on the CPU
        quiet_libraries()
        rec.set("env", environment())
        if not smoke and not torch.cuda.is_available():
            raise RuntimeError("no CUDA device: run with --smoke on a machine without a GPU")
        import bitsandbytes  # noqa: F401 — NF4 is the point of the check; fail loudly and early without it

        sizes = SMOKE if smoke else FULL
        with tempfile.TemporaryDirectory(prefix=f"gpu-check-{name}-", dir=scratch_root()) as scratch:
            SECTION_FUNCTIONS[name](sizes, clock, rec, Path(scratch))
        rec.data["status"] = "ok" if not rec.data["errors"] and not rec.data["skipped"] else (
            "partial" if not rec.data["errors"] else "errors")
    except Exception as exc:  # noqa: BLE001
        rec.error("section", exc)
        rec.data["status"] = "failed"
    rec.set("seconds", round(clock.elapsed(), 1))
    say(name, f"done: {rec.data['status']} in {clock.elapsed():.0f} s")
    return 0


def scratch_root() -> str | None:
    """Where the loader passes write their shallow checkpoints: RAM (/dev/shm) when it has room, else the default."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.statvfs(shm).f_bavail * os.statvfs(shm).f_frsize > 12 * GB:
            return str(shm)
    except OSError:
        pass
    return None


def quiet_libraries() -> None:
    """Errors only, no progress bars: the section's own progress lines stay readable."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    import warnings

    warnings.filterwarnings("ignore")


# ================================================================================================= runner
def run_all(args: argparse.Namespace) -> int:
    """Parent process (imports no torch): runs each section in a child with a hard time limit, then the table."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    boxes = dict(SMOKE_BOXES if args.smoke else GPU_BOXES)
    if args.scale != 1.0:
        boxes = {k: v * args.scale for k, v in boxes.items()}
    sections = [s for s in SECTIONS if s in args.sections]
    started = time.perf_counter()
    say("gpu_check", f"{'smoke (tiny configs, CPU)' if args.smoke else 'full size'}: sections {', '.join(sections)}; "
                     f"time boxes {', '.join(f'{s} {boxes[s]:.0f} s' for s in sections)}")
    side_by_side = args.smoke and not args.serial  # one device: one section at a time, its output streamed live
    children = {}
    for name in sections:
        children[name] = start_child(name, out, args.smoke, side_by_side, boxes[name])
        if not side_by_side:
            finish_child(name, children[name], boxes[name], out)
    if side_by_side:
        for name in sections:
            finish_child(name, children[name], boxes[name], out)
    report = collect(out, sections, args.smoke, time.perf_counter() - started)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    table = render_table(report)
    (out / "gpu_check.md").write_text(table)
    print("\n" + table, flush=True)
    return 0


def start_child(name: str, out: Path, smoke: bool, side_by_side: bool, box_s: float) -> subprocess.Popen:
    command = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--out", str(out),
               "--box", str(box_s)] + (["--smoke"] if smoke else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 — closed in finish_child
    if side_by_side:  # each child's output goes to its log, printed when it ends
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True)
    process.log = log  # type: ignore[attr-defined]
    return process


def finish_child(name: str, process: subprocess.Popen, box_s: float, out: Path) -> None:
    """Wait (streaming its output live on the GPU) until the box plus grace, then kill; record what happened."""
    deadline = time.perf_counter() + box_s + CHILD_GRACE_S
    if process.stdout is not None:  # stream line by line (progress stays visible)
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        while process.poll() is None and time.perf_counter() < deadline:
            for _ in selector.select(timeout=1.0):
                line = process.stdout.readline()
                if line:
                    print(line, end="", flush=True)
                    process.log.write(line)  # type: ignore[attr-defined]
    timed_out = False
    try:
        process.wait(timeout=max(deadline - time.perf_counter(), 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
        process.kill()
        process.wait()
    if process.stdout is not None:  # what is left once it ended (or was killed)
        for line in process.stdout:
            print(line, end="", flush=True)
            process.log.write(line)  # type: ignore[attr-defined]
    log = getattr(process, "log", None)
    if log is not None:
        log.close()
    if process.stdout is None:  # smoke: show the child's log now
        print((out / f"{name}.log").read_text(), end="", flush=True)
    path = out / f"{name}.json"
    empty = {"section": name, "notes": [], "skipped": [], "errors": []}
    data = json.loads(path.read_text()) if path.is_file() else empty
    if timed_out and "seconds" in data:  # its work was done and recorded; it was still shutting down
        data.setdefault("notes", []).append(f"killed while exiting, {box_s + CHILD_GRACE_S:.0f} s after its start")
    elif timed_out:
        data["status"] = "timed out"
        data.setdefault("errors", []).append(f"killed after {box_s + CHILD_GRACE_S:.0f} s (time box + grace)")
    elif process.returncode != 0:
        data["status"] = "crashed"
        data.setdefault("errors", []).append(f"exit code {process.returncode} (see {name}.log)")
    path.write_text(json.dumps(data, indent=1))


def collect(out: Path, sections: list[str], smoke: bool, seconds: float) -> dict[str, Any]:
    report: dict[str, Any] = {"meta": {"smoke": smoke, "note": RANDOM_NOTE, "seconds": round(seconds, 1),
                                       "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "goals": GOALS}}
    for name in SECTIONS:
        path = out / f"{name}.json"
        if name in sections and path.is_file():
            report[name] = json.loads(path.read_text())
        else:
            report[name] = {"section": name, "status": "not run" if name not in sections else "no output"}
        if "env" in report[name] and "env" not in report["meta"]:
            report["meta"]["env"] = report[name]["env"]
    return report


# ------------------------------------------------------------------------------------------------- table
def render_table(report: dict[str, Any]) -> str:
    """The short table: each headline figure with its goal and a verdict (figures from random weights)."""
    meta = report["meta"]
    env = meta.get("env", {})
    where = env.get("gpu") or f"CPU ({env.get('cpu_threads', '?')} thread(s) per section)"
    lines = [f"## gpu_check {'--smoke ' if meta['smoke'] else ''}— {where}, "
             f"torch {env.get('packages', {}).get('torch')}, python {env.get('python')}, {meta['created_utc']}",
             "", f"RANDOM WEIGHTS: {RANDOM_NOTE}.", "",
             "| section | measure | value | goal |", "|---|---|---:|---|"]
    for row in table_rows(report):
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name in SECTIONS:
        section = report[name]
        took = f" in {section['seconds']} s" if "seconds" in section else ""
        lines.append(f"- {name}: {section.get('status')}{took}")
        for key, label in (("errors", "error"), ("skipped", "skipped"), ("notes", "note")):
            for text in section.get(key, []):
                lines.append(f"  - {label}: {text}")
    lines.append(f"- total {meta['seconds']} s")
    return "\n".join(lines) + "\n"


def _goal(value: float | None, goal: float | None, unit: str = "") -> str:
    if goal is None:
        return "—"
    if value is None:
        return f"≤ {goal:g}{unit}"
    return f"≤ {goal:g}{unit} {'✅' if value <= goal else '❌'}"


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    smoke = report["meta"]["smoke"]
    if smoke:  # tiny configs on a CPU say nothing about the goals
        goals = dict.fromkeys(GOALS)
    else:
        goals = GOALS
    flux = report["flux"]
    for variant, data in flux.get("variants", {}).items():
        inv = data.get("invariants", {})
        if inv:
            worst = max(v.get("relative_error", 0.0) for v in inv.values() if isinstance(v, dict))
            rows.append(["flux", f"{variant}: invariants (zero bias = stock, injection = source, bias live)",
                         f"{'pass' if inv.get('all_pass') else 'FAIL'} (max rel. err {worst:.1e})",
                         f"rel. err ≤ {inv.get('tolerance')}"])
        forwards = data.get("forward_s", {})
        if forwards:
            gbca = forwards.get("GBCA (bias + injection)", {}).get("ratio_vs_diffusers")
            rows.append(["flux", f"{variant}: one transformer forward, GBCA / diffusers' processors",
                         _fmt(gbca, "×", 3), _goal(gbca, goals["gbca_ratio"], "×")])
        for side, block in data.get("followups", {}).items():
            configs = block.get("configs", {})
            page = configs.get("gbca_capture")
            if page:
                s = page["s_per_followup"]["median"]
                goal = goals["flux_nf4_256_s"] if (variant == "nf4" and str(side) == "256") else None
                what = f"{variant} {side}²: s per follow-up (GBCA + capture, {block.get('steps')} steps)"
                rows.append(["flux", what, _fmt(s, " s"), _goal(s, goal, " s")])
                gb_goal = goals["flux_nf4_256_gb"] if goal is not None else None
                rows.append(["flux", f"{variant} {side}²: peak GPU memory", _fmt(page.get("peak_gb"), " GB"),
                             _goal(page.get("peak_gb"), gb_goal, " GB")])
            if "gbca" in configs and "ratio_vs_stock" in configs["gbca"]:
                ratio = configs["gbca"]["ratio_vs_stock"]
                rows.append(["flux", f"{variant} {side}²: follow-up GBCA / stock", _fmt(ratio, "×", 3),
                             _goal(ratio, goals["gbca_ratio"], "×")])
            if "capture_overhead" in configs:
                rows.append(["flux", f"{variant} {side}²: capture overhead (GBCA + capture / GBCA)",
                             _fmt(configs["capture_overhead"], "×", 3), "—"])
    rows += _loader_row("flux", flux, "from_pretrained (shallow) + generate")
    qwen = report["qwen"]
    for name, block in qwen.get("ground", {}).items():
        warm = block.get("warm")
        value = warm["median"] if warm else block.get("cold", {}).get("s")
        tokens = (warm or block.get("cold", {})).get("max_new_tokens", "?")
        label = "warm" if warm else "cold"
        goal = goals["qwen_warm_s"] if name == "typical" and warm else None
        rows.append(["qwen", f"/ground {label}, ≤ {tokens} new tokens ({name})", _fmt(value, " s"),
                     _goal(value, goal, " s")])
        peak = (warm or {}).get("runs", [{}])[-1].get("peak_gb") if warm else block.get("cold", {}).get("peak_gb")
        rows.append(["qwen", f"/ground peak GPU memory ({name})", _fmt(peak, " GB"), "—"])
    rows += _loader_row("qwen", qwen, "QwenPointModel.load (shallow) + ask")
    emu3 = report["emu3"]
    follow = emu3.get("followups", {})
    for name in ("gbca_on", "gbca_off"):
        if name in follow:
            s = follow[name]["s_per_followup"]["median"]
            goal = goals["emu3_s"]
            rows.append(["emu3", f"{name.replace('_', ' ')}: s per follow-up ({_grid(emu3)})", _fmt(s, " s"),
                         _goal(s, goal, " s")])
            rows.append(["emu3", f"{name.replace('_', ' ')}: tokens/s, peak memory",
                         f"{follow[name]['tokens_per_s']:.1f}, {_fmt(follow[name]['peak_gb'], ' GB')}", "—"])
    if "ratio_on_off" in follow:
        rows.append(["emu3", "sampling time GBCA on / off", _fmt(follow["ratio_on_off"], "×", 3),
                     _goal(follow["ratio_on_off"], goals["gbca_ratio"], "×")])
    rows += _loader_row("emu3", emu3, "from_pretrained (shallow) + generate")
    return rows


def _loader_row(name: str, section: dict, what: str) -> list[list[str]]:
    loader = section.get("loader")
    if not loader:
        return []
    verdict = "ok" if loader.get("ok") else "FAIL"
    return [[name, f"loader: {what}", f"{verdict} (load {_fmt(loader.get('load_s'), ' s', 1)})", "—"]]


def _grid(section: dict) -> str:
    grid = section.get("token_grid")
    return f"{grid[0]}×{grid[1]} tokens" if grid else "?"


# ----------------------------------------------------------------------------------------------------- cli
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (gpu_check.json, gpu_check.md, per-section files)")
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU: the same code paths in ≤ 60 s")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every section's time box (default 1)")
    parser.add_argument("--serial", action="store_true",
                        help="--smoke: run the sections one after another, output streamed (as on the GPU)")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--box", type=float, help=argparse.SUPPRESS)  # child process: its time box in seconds
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        parser.error(f"--sections takes names from {', '.join(SECTIONS)}; got {args.sections}")
    if not 0.01 <= args.scale <= 10:
        parser.error(f"--scale must be between 0.01 and 10, got {args.scale}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.section:
        return run_section(args.section, Path(args.out), args.smoke, args.box)
    return run_all(args)


if __name__ == "__main__":
    raise SystemExit(main())
