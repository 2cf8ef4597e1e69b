"""An Emu3 image generator as the AR LeGend uses it: model, tokenizer, VQ codec and vocabulary, one forward call."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from .attention import ARGBCAState, use_gbca_attention
from .codec import Emu3VQCodec
from .vocab import Emu3Vocab


@dataclass
class ARBackbone:
    model: Any  # transformers.Emu3ForConditionalGeneration (optionally with a peft LoRA adapter)
    tokenizer: Any
    codec: Emu3VQCodec
    vocab: Emu3Vocab
    _cache_arg: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        use_gbca_attention(self.model)
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed during transformers 5.x

    @classmethod
    def from_model(cls, model, tokenizer, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)) -> "ARBackbone":
        codec = Emu3VQCodec(model.model.vqmodel, image_mean, image_std)
        return cls(model=model, tokenizer=tokenizer, codec=codec, vocab=Emu3Vocab.from_model(model, tokenizer))

    @property
    def text_config(self):
        return self.model.config.text_config

    @property
    def num_layers(self) -> int:
        return int(self.text_config.num_hidden_layers)

    @property
    def max_positions(self) -> int:
        return int(self.text_config.max_position_embeddings)

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def encode_text(self, text: str) -> list[int]:
        """Text → token ids without special tokens (X_D, the "h*w" size string)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def check_length(self, length: int) -> None:
        if length > self.max_positions:
            raise ValueError(f"the sequence has {length} tokens; this model takes at most {self.max_positions} "
                             "(shorten the progression text or use a smaller model side)")

    def forward(
        self,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        cache=None,
        state: ARGBCAState | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        use_cache: bool = False,
    ):
        """ids (B, q) → (logits (B, q' , V), cache); `state` reaches the GBCA attention function as `gbca=`."""
        device = self.device
        out = self.model(
            input_ids=ids.to(device),
            attention_mask=None if attention_mask is None else attention_mask.to(device),
            position_ids=None if positions is None else positions.to(device),
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            gbca=state,
            **{self._cache_arg: cache},
        )
        return out.logits, getattr(out, self._cache_arg, None)
