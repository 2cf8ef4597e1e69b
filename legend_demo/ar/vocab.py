"""Emu3's token vocabulary for images: the special tokens around an image and the VQ code ⇄ token id maps.

An Emu3 image in a sequence is `<|image start|> "h*w" <|image token|>`, then h rows of w visual tokens each
closed by an end-of-line token (`<|extra_200|>`), then `<|extra_201|>` (end of frame) and `<|image end|>`
(transformers' Emu3Processor and Emu3ImageVocabularyMapping write the same layout). The ids are read from the
checkpoint's tokenizer and `config.vocabulary_map`, never hard-coded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# the tokenizer attribute that names each special token, with Emu3's spelling when the attribute is missing
SPECIAL_TOKENS = {
    "boi": ("boi_token", "<|image start|>"),
    "eoi": ("eoi_token", "<|image end|>"),
    "image_wrapper": ("image_wrapper_token", "<|image token|>"),
    "eof": ("eof_token", "<|extra_201|>"),
}


@dataclass(frozen=True)
class Emu3Vocab:
    """Token ids of Emu3's image layout plus the code → token id map of the VQ codebook."""

    bos: int
    eos: int
    pad: int
    boi: int
    eoi: int
    image_wrapper: int
    eol: int
    eof: int
    visual: torch.Tensor  # (codebook,) token id of each VQ code

    @property
    def codebook_size(self) -> int:
        return int(self.visual.numel())

    def to_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """VQ codes (any shape) → token ids (same shape)."""
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"VQ codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]")
        return self.visual.to(codes.device)[codes.long()]

    def to_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Visual token ids (any shape) → VQ codes; ValueError when a token is not a visual token."""
        lookup = torch.full((int(self.visual.max()) + 1,), -1, dtype=torch.long)
        lookup[self.visual] = torch.arange(self.codebook_size)
        tokens = tokens.long().cpu()
        codes = torch.full_like(tokens, -1)
        inside = tokens <= int(self.visual.max())
        codes[inside] = lookup[tokens[inside].clamp(min=0)]
        if (codes < 0).any():
            bad = tokens[codes < 0][:5].tolist()
            raise ValueError(f"tokens {bad} are not visual tokens of this Emu3 vocabulary")
        return codes

    def visual_ids(self, device=None) -> torch.Tensor:
        """(codebook,) the ids the sampler may draw inside an image row."""
        return self.visual.to(device)

    @classmethod
    def from_model(cls, model, tokenizer) -> "Emu3Vocab":
        """Read the ids from an Emu3ForConditionalGeneration's vocabulary map and its tokenizer."""
        mapping = model.vocabulary_mapping  # transformers' Emu3ImageVocabularyMapping
        if mapping.eol_token_id is None or not mapping.image_tokens:
            raise ValueError("the model's vocabulary_map has no visual tokens or no end-of-line token (<|extra_200|>)")
        img2bpe = mapping.img2bpe
        codebook = model.model.vqmodel.config.codebook_size
        missing = [code for code in range(codebook) if code not in img2bpe]
        if missing:
            raise ValueError(f"the vocabulary_map lacks visual tokens for VQ codes {missing[:5]} (codebook {codebook})")
        specials = {name: _token_id(tokenizer, attr, default) for name, (attr, default) in SPECIAL_TOKENS.items()}
        ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
        if any(v is None for v in ids.values()):
            raise ValueError(f"the tokenizer lacks bos/eos/pad tokens: {ids}")
        visual = torch.tensor([img2bpe[code] for code in range(codebook)], dtype=torch.long)
        return cls(**ids, **specials, eol=int(mapping.eol_token_id), visual=visual)


def _token_id(tokenizer, attribute: str, default: str) -> int:
    token = getattr(tokenizer, attribute, None) or default
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {token!r} token ({attribute}); is this an Emu3 tokenizer?")
    return int(token_id)
