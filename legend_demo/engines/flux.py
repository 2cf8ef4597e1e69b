"""LeGend-Diffusion on FLUX.1-dev: FluxPipeline's components (VAE, CLIP + T5 encoders, scheduler, transformer)
loaded with diffusers/transformers bitsandbytes configs, an optional stage-1 LoRA and stage-2 GBCA weights.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

import torch

from ..checkpoints import checkpoint_path, fingerprint
from ..errors import EngineUnavailableError, GenerationError
from ..strength import S_MAX, StrengthMLP
from .base import Engine, GenerationRequest, GenerationResult, ProgressFn
from .dual_path import DualPathEditor, FluxLatentCodec, package_versions, utc_now

FLUX_DEV_VITAL_LAYERS = (0, 1, 2, 17, 18, 25, 28, 53, 54, 56)  # thesis §5.3.1 (57 layers: 19 double + 38 single)
QUANTIZATIONS = ("nf4", "int8", None)
FREE_VRAM_NEEDED_GB = {"nf4": 14.0, "int8": 22.0, None: 36.0}  # transformer + T5 + CLIP + VAE + activations at 256²


def quantization_config(kind: str | None, components: tuple[str, ...] = ("transformer", "text_encoder_2")):
    """diffusers PipelineQuantizationConfig for bitsandbytes NF4 / int8 (None: full precision)."""
    if kind not in QUANTIZATIONS:
        raise ValueError(f"quantization={kind!r}; choose one of nf4, int8 or None")
    if kind is None:
        return None
    from diffusers.quantizers import PipelineQuantizationConfig

    if kind == "nf4":
        backend = "bitsandbytes_4bit"
        kwargs = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.bfloat16}
    else:
        backend, kwargs = "bitsandbytes_8bit", {"load_in_8bit": True}
    return PipelineQuantizationConfig(quant_backend=backend, quant_kwargs=kwargs, components_to_quantize=list(components))


def check_free_vram(quantization: str | None) -> None:
    """Refuse to start loading when the GPU lacks the memory the backbone needs, with the numbers."""
    free, total = torch.cuda.mem_get_info()
    needed = FREE_VRAM_NEEDED_GB[quantization] * 2**30
    if free < needed:
        raise EngineUnavailableError(
            f"the GPU has {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB; LeGend-Diffusion "
            f"({quantization or 'bf16'}) needs about {needed / 2**30:.0f} GiB — close other GPU jobs or use nf4"
        )


class DualPathEngine(Engine):
    """An Engine around a DualPathEditor: validation, vital-layer defaults, one job at a time, provenance."""

    max_bias_strength = S_MAX

    def __init__(
        self,
        editor: DualPathEditor,
        *,
        checkpoint: str,
        vital_layers: tuple[int, ...] | None = None,
        default_steps: int = 28,
        fingerprints: dict[str, Any] | None = None,
        load_options: dict[str, Any] | None = None,
    ):
        self.editor = editor
        self._checkpoint = checkpoint
        self.model_side = editor.model_side
        self.default_steps = default_steps
        self.fingerprints = fingerprints or {}
        self.load_options = load_options or {}
        self._vital = self._default_vital(vital_layers)
        self._lock = threading.Lock()  # one generation at a time per loaded model

    @property
    def checkpoint(self) -> str:
        return self._checkpoint

    @property
    def num_layers(self) -> int:
        return self.editor.num_layers

    @property
    def default_vital_layers(self) -> tuple[int, ...]:
        return self._vital

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.editor.codec.token_grid(self.model_side)

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        request.validate(self.max_bias_strength)
        steps = request.steps or self.default_steps
        vital = tuple(request.vital_layers) if request.vital_layers is not None else self._vital
        with self._lock:
            try:
                out = self.editor.run(request, vital, steps, progress, cancel)
            except torch.OutOfMemoryError as exc:
                _release_cuda()
                raise GenerationError(
                    f"out of GPU memory ({exc.__class__.__name__}); memory released — try fewer capture layers"
                ) from None
        return GenerationResult(
            followup=out["followup"],
            source_reconstruction=out["source_reconstruction"],
            prior_image=out["prior_image"],
            prior_map=out["prior_map"],
            frame=out["frame"],
            points=list(request.points),
            layers=out["layers"],
            timings_s=out["timings_s"],
            provenance=self._provenance(request, steps, out),
            engine=self.name,
            checkpoint=self.checkpoint,
        )

    def _default_vital(self, vital_layers: tuple[int, ...] | None) -> tuple[int, ...]:
        if vital_layers is not None:
            return tuple(sorted(vital_layers))
        if self.num_layers == 57:
            return FLUX_DEV_VITAL_LAYERS
        return tuple(range(self.num_layers))  # small models: every layer until a vitality analysis says otherwise

    def _provenance(self, request: GenerationRequest, steps: int, out: dict) -> dict[str, Any]:
        return {
            "created_utc": utc_now(),
            "synthetic": True,
            "engine": self.name,
            "checkpoint": self.checkpoint,
            "checkpoint_fingerprints": self.fingerprints,
            "load": self.load_options,
            "packages": package_versions(),
            "parameters": {
                "progression_text": request.progression_text,
                "source_text": request.source_text,
                "points": [p.to_dict() for p in request.points],
                "sigma_ratio": request.sigma_ratio,
                "bias_strength": request.bias_strength,
                "bias_strength_mode": _strength_mode(request.bias_strength, self.editor.strength_mlp),
                "strength_per_step": out["strength_per_step"],
                "vital_layers": out["vital_layers"],
                "inject": request.inject,
                "capture_layers": out["capture_layers"],
                "steps": steps,
                "sigmas": out["sigmas"],
                "seed": request.seed,
                "noise_mix": request.noise_mix,
                "guidance_scale": self.editor.guidance_scale,
                "model_side": self.model_side,
                "frame": out["frame"].to_dict(),
            },
        }


class LeGendDiffusionEngine(DualPathEngine):
    """Dual-path GBCA editing on a FLUX-family pipeline (thesis ch. 5)."""

    name = "legend-diffusion"
    label = "LeGend-Diffusion (FLUX.1-dev + GBCA)"

    def __init__(
        self,
        pipe,
        *,
        checkpoint: str,
        strength: StrengthMLP | None = None,
        vital_layers: tuple[int, ...] | None = None,
        model_side: int = 256,
        default_steps: int = 28,
        guidance_scale: float | None = 3.5,
        max_sequence_length: int = 512,
        fingerprints: dict[str, Any] | None = None,
        load_options: dict[str, Any] | None = None,
    ):
        self.pipe = pipe
        self.max_sequence_length = min(max_sequence_length, pipe.tokenizer_2.model_max_length)
        editor = DualPathEditor(
            transformer=pipe.transformer,
            codec=FluxLatentCodec(pipe.vae, pipe.vae_scale_factor),
            encode_text=self._encode_text,
            scheduler_config=dict(pipe.scheduler.config),
            strength_mlp=strength,
            guidance_scale=guidance_scale if pipe.transformer.config.guidance_embeds else None,
            model_side=model_side,
        )
        super().__init__(
            editor,
            checkpoint=checkpoint,
            vital_layers=vital_layers,
            default_steps=default_steps,
            fingerprints=fingerprints,
            load_options=load_options,
        )

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        quantization: str | None = "auto",
        lora: str | None = None,
        gbca_weights: str | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        **options,
    ) -> "LeGendDiffusionEngine":
        """Load FLUX.1-dev (local folder or hub id); quantization "auto" = NF4 on CUDA, full precision on CPU."""
        from diffusers import FluxPipeline

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if quantization == "auto":
            quantization = "nf4" if device.startswith("cuda") else None
        qconfig = quantization_config(quantization)
        if quantization is not None:
            if not device.startswith("cuda"):
                raise EngineUnavailableError(f"{quantization} loading needs a CUDA GPU (device={device})")
            if importlib.util.find_spec("bitsandbytes") is None:
                raise EngineUnavailableError("4-/8-bit loading needs bitsandbytes: pip install -r requirements-gpu.txt")
        if device.startswith("cuda"):
            check_free_vram(quantization)
        dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        try:
            pipe = FluxPipeline.from_pretrained(path, quantization_config=qconfig, dtype=dtype)
        except (OSError, ValueError) as exc:  # missing folder, bad hub id, incomplete download
            raise EngineUnavailableError(f"cannot load FLUX from {path}: {exc}") from None
        if lora:
            pipe.load_lora_weights(lora)
        _place(pipe, device, quantized=quantization is not None)
        strength = StrengthMLP.load(gbca_weights) if gbca_weights else None
        sources = {"flux": path, "stage1_lora": lora, "stage2_gbca": gbca_weights}
        prints = {k: (fp.to_dict() if fp else None) for k, fp in ((k, fingerprint(v)) for k, v in sources.items())}
        label = path + (f" + LoRA {lora}" if lora else "") + (f" + GBCA {gbca_weights}" if gbca_weights else "")
        load = {"source": path, "quantization": quantization, "device": device, "dtype": str(dtype).replace("torch.", "")}
        return cls(pipe, checkpoint=label, strength=strength, fingerprints=prints, load_options=load, **options)

    def _encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        embeds, pooled, _ = self.pipe.encode_prompt(
            prompt=prompts, prompt_2=None, device=self.editor.device, max_sequence_length=self.max_sequence_length
        )
        return embeds, pooled  # (B, T, J), (B, P)


def _strength_mode(bias_strength: float | None, mlp: StrengthMLP | None) -> str:
    if bias_strength == 0:
        return "off"
    if bias_strength is not None:
        return "fixed"
    return "learned s(tau)" if mlp is not None else "untrained s(tau) (init 0.01)"


def _place(pipe, device: str, quantized: bool) -> None:
    """Move unquantized components to the device; bitsandbytes modules already sit on the GPU they were loaded to."""
    if not quantized:
        pipe.to(device)
        return
    for name in ("vae", "text_encoder"):
        getattr(pipe, name).to(device)


def _release_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def availability() -> tuple[bool, str]:
    path = checkpoint_path("flux")
    if path is None:
        return False, "no FLUX.1-dev checkpoint: put it in checkpoints/flux1-dev/ or set LEGEND_FLUX_PATH"
    if not torch.cuda.is_available() and os.environ.get("LEGEND_ALLOW_CPU_FLUX") != "1":
        return False, "FLUX.1-dev (12B parameters) needs a CUDA GPU; none is visible"
    return True, f"FLUX.1-dev from {path}"


def load(**options) -> LeGendDiffusionEngine:
    path = checkpoint_path("flux")
    if path is None:
        raise EngineUnavailableError(availability()[1])
    options.setdefault("lora", checkpoint_path("stage1_lora"))
    options.setdefault("gbca_weights", checkpoint_path("stage2_gbca"))
    return LeGendDiffusionEngine.from_pretrained(path, **options)
