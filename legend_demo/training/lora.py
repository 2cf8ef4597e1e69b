"""Stage-1 LoRA on a FLUX transformer (thesis §5.3.1: r = 16, α = 32 on the attention q/k/v/out projections).

Saved with FluxPipeline.save_lora_weights (pytorch_lora_weights.safetensors + adapter metadata, so α survives),
the file `FluxPipeline.load_lora_weights` and LeGendDiffusionEngine.from_pretrained(lora=…) read.
"""
from __future__ import annotations

from pathlib import Path

import torch

# double blocks: to_q/k/v, to_out.0 (image stream) and add_q/k/v_proj, to_add_out (text stream);
# single blocks (pre_only attention) have to_q/k/v only — their output projection is the block's proj_out.
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
LORA_RANK, LORA_ALPHA = 16, 32
LORA_FILE = "pytorch_lora_weights.safetensors"


def add_lora(transformer, rank: int = LORA_RANK, alpha: int = LORA_ALPHA) -> list[torch.nn.Parameter]:
    """Freeze the transformer, add a peft LoRA adapter ("default"); return its (float32) trainable parameters."""
    from peft import LoraConfig

    if rank < 1 or alpha <= 0:
        raise ValueError(f"LoRA rank={rank} must be ≥ 1 and alpha={alpha} positive")
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(LORA_TARGETS)))
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()  # train the adapter in fp32 even on a bf16 backbone
    return params


def save_lora(folder: str | Path, transformer) -> Path:
    """Write folder/pytorch_lora_weights.safetensors in diffusers' FLUX LoRA format, with r and α as metadata."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()}
    FluxPipeline.save_lora_weights(
        folder,
        transformer_lora_layers=layers,
        transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict(),
        weight_name=LORA_FILE,
    )
    return folder / LORA_FILE
