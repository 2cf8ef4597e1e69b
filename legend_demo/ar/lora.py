"""The AR LoRA (thesis §4.3.3: r = 32, α = 64, dropout 0.05 on the decoder's q/k/v/o) through peft's own API.

Saved in peft's folder format (adapter_config.json + adapter_model.safetensors with "base_model.model." keys), so
`peft.PeftModel.from_pretrained` reads it too; the model class stays Emu3ForConditionalGeneration (peft's
inject_adapter_in_model), so the GBCA attention function and the sampler see the same model either way.
"""
from __future__ import annotations

from pathlib import Path

import torch

LORA_RANK, LORA_ALPHA, LORA_DROPOUT = 32, 64, 0.05
LORA_TARGETS = r".*text_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"  # not the VQ tokenizer's attention
CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


def add_lora(model, rank: int = LORA_RANK, alpha: int = LORA_ALPHA, dropout: float = LORA_DROPOUT) -> list[torch.nn.Parameter]:
    """Freeze the model, inject a LoRA adapter ("default"); return its trainable parameters (float32)."""
    from peft import LoraConfig

    if rank < 1 or alpha <= 0 or not 0 <= dropout < 1:
        raise ValueError(f"LoRA rank={rank} must be ≥ 1, alpha={alpha} positive and dropout={dropout} in [0, 1)")
    return _inject(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                                     target_modules=LORA_TARGETS))


def _inject(model, config) -> list[torch.nn.Parameter]:
    from peft import inject_adapter_in_model

    if getattr(model, "_legend_lora", None) is not None:
        raise ValueError("this model already carries a LoRA adapter")
    model.requires_grad_(False)
    training = model.training
    inject_adapter_in_model(config, model)
    model.train(training)  # the injected layers start in training mode (LoRA dropout on); keep the model's mode
    model._legend_lora = config
    params = [p for name, p in model.named_parameters() if "lora_" in name]
    for p in params:
        p.data = p.data.float()  # train the adapter in fp32 even on a bf16 backbone
        p.requires_grad_(True)
    if not params:
        raise ValueError("the LoRA targets matched no layer: is this an Emu3 text decoder?")
    return params


def save_lora(model, folder: str | Path) -> Path:
    """Write folder/adapter_config.json and folder/adapter_model.safetensors (peft's format)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    config = getattr(model, "_legend_lora", None)
    if config is None:
        raise ValueError("this model has no LoRA adapter to save (add_lora or load_lora first)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {PEFT_PREFIX + k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    config.save_pretrained(str(folder))
    return folder


def load_lora(model, folder: str | Path) -> None:
    """Inject the saved adapter into `model` and load its weights; FileNotFoundError / ValueError when unusable."""
    from peft import LoraConfig, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no LoRA adapter in {folder} (need {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = LoraConfig.from_pretrained(str(folder))
    weights = {k.removeprefix(PEFT_PREFIX): v for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    params = _inject(model, config)
    result = set_peft_model_state_dict(model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected or len(weights) != len(params):
        raise ValueError(f"LoRA {folder} does not fit this model: {len(missing)} missing and {len(unexpected)} unexpected tensors")
    model.requires_grad_(False)
