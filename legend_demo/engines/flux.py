"""LeGend-Diffusion on FLUX.1-dev: FluxPipeline's components (VAE, CLIP + T5 encoders, scheduler, transformer)
loaded with diffusers/transformers bitsandbytes configs, an optional stage-1 LoRA and stage-2 GBCA weights.
"""
from __future__ import annotations

from typing import Any

import torch

from ..core import settings
from ..core.checkpoints import checkpoint_path, public_name
from ..core.errors import EngineUnavailableError
from ..method.codecs import FluxLatentCodec
from ..method.dual_path import DualPathEditor
from ..method.strength import StrengthMLP
from .dual_path import DualPathEngine
from .loading import LoadPlan, PretrainedLoading, check_quantization

LABEL = "LeGend-Diffusion (FLUX.1-dev + GBCA)"  # shown in the engine list (registry) and on every result
FREE_VRAM_NEEDED_GB = {"nf4": 14.0, "int8": 22.0, None: 36.0}  # transformer + T5 + CLIP + VAE + activations at 256²


def quantization_config(kind: str | None, components: tuple[str, ...] = ("transformer", "text_encoder_2")):
    """diffusers PipelineQuantizationConfig for bitsandbytes NF4 / int8 (None: full precision)."""
    check_quantization(kind)
    if kind is None:
        return None
    from diffusers.quantizers import PipelineQuantizationConfig

    if kind == "nf4":
        backend = "bitsandbytes_4bit"
        kwargs = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": torch.bfloat16}
    else:
        backend, kwargs = "bitsandbytes_8bit", {"load_in_8bit": True}
    return PipelineQuantizationConfig(quant_backend=backend, quant_kwargs=kwargs, components_to_quantize=list(components))


class LeGendDiffusionEngine(PretrainedLoading, DualPathEngine):
    """Dual-path GBCA editing on a FLUX-family pipeline (thesis ch. 5)."""

    name = "legend-diffusion"
    label = LABEL

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

    free_vram_gb = FREE_VRAM_NEEDED_GB
    memory_name = "LeGend-Diffusion"
    weight_names = ("flux", "stage1_lora", "stage2_gbca")

    @classmethod
    def _load_backbone(cls, path: str, plan: LoadPlan, lora: str | None, gbca_weights: str | None,
                       options: dict[str, Any]):
        """FluxPipeline.from_pretrained (bitsandbytes NF4/int8 for the transformer and T5), the LoRA, s(τ)."""
        from diffusers import FluxPipeline

        try:
            pipe = FluxPipeline.from_pretrained(path, quantization_config=quantization_config(plan.quantization),
                                                dtype=plan.dtype)
        except (OSError, ValueError) as exc:  # missing folder, bad hub id, incomplete download
            raise EngineUnavailableError(f"cannot load FLUX from {path}: {exc}") from None
        if lora:
            pipe.load_lora_weights(lora)
        _place(pipe, plan.device, quantized=plan.quantization is not None)
        return pipe, StrengthMLP.load(gbca_weights) if gbca_weights else None, {}

    def _encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        embeds, pooled, _ = self.pipe.encode_prompt(
            prompt=prompts, prompt_2=None, device=self.editor.device, max_sequence_length=self.max_sequence_length
        )
        return embeds, pooled  # (B, T, J), (B, P)


def _place(pipe, device: str, quantized: bool) -> None:
    """Move unquantized components to the device; bitsandbytes modules already sit on the GPU they were loaded to."""
    if not quantized:
        pipe.to(device)
        return
    for name in ("vae", "text_encoder"):
        getattr(pipe, name).to(device)


def availability() -> tuple[bool, str]:
    path = checkpoint_path("flux")
    if path is None:
        return False, "no FLUX.1-dev checkpoint: put it in checkpoints/flux1-dev/ or set LEGEND_FLUX_PATH"
    if not torch.cuda.is_available() and not settings.get("LEGEND_ALLOW_CPU_FLUX"):
        return False, "FLUX.1-dev (12B parameters) needs a CUDA GPU; none is visible"
    return True, f"FLUX.1-dev from {public_name(path)}"


def load(**options) -> LeGendDiffusionEngine:
    path = checkpoint_path("flux")
    if path is None:
        raise EngineUnavailableError(availability()[1])
    options.setdefault("lora", checkpoint_path("stage1_lora"))
    options.setdefault("gbca_weights", checkpoint_path("stage2_gbca"))
    return LeGendDiffusionEngine.from_pretrained(path, **options)
