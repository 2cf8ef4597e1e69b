"""A tiny random Emu3 (text decoder + VQ tokenizer) and a character-level tokenizer, built in code: the AR
engine's tests and CPU benchmark run on it without downloads. Its output is noise (untrained weights)."""
from __future__ import annotations

from pathlib import Path

import torch

TINY_AR_SIDE = 16  # model side of the tiny tokenizer (factor 2 → an 8×8 token grid)
_SPECIALS = {  # Emu3's special-token spelling
    "bos": "<|extra_203|>", "eos": "<|extra_204|>", "pad": "<|endoftext|>", "boi": "<|image start|>",
    "eoi": "<|image end|>", "image_wrapper": "<|image token|>", "eol": "<|extra_200|>", "eof": "<|extra_201|>",
    "image": "<image>",
}


def tiny_tokenizer(codebook: int = 32):
    """Printable ASCII one character per token, Emu3's special tokens and `codebook` visual tokens."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {chr(c): i for i, c in enumerate(range(32, 127))}
    vocab["<unk>"] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.add_special_tokens(list(_SPECIALS.values()) + [visual_token(code) for code in range(codebook)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=_SPECIALS["bos"], eos_token=_SPECIALS["eos"], pad_token=_SPECIALS["pad"],
        unk_token="<unk>",
        extra_special_tokens={"image_token": _SPECIALS["image"], "boi_token": _SPECIALS["boi"],
                              "eoi_token": _SPECIALS["eoi"], "image_wrapper_token": _SPECIALS["image_wrapper"],
                              "eof_token": _SPECIALS["eof"]},
    )


def visual_token(code: int) -> str:
    return f"<|visual token {code:06d}|>"


def tiny_emu3(num_layers: int = 4, hidden: int = 32, heads: int = 4, kv_heads: int = 2, codebook: int = 32,
              seed: int = 0, max_positions: int = 4096):
    """(Emu3ForConditionalGeneration in eval mode, tokenizer) with random weights; VQ factor 2."""
    from transformers import Emu3Config, Emu3ForConditionalGeneration

    tokenizer = tiny_tokenizer(codebook)
    vocab = dict(tokenizer.get_vocab())
    config = Emu3Config(
        vq_config=dict(codebook_size=codebook, embed_dim=4, latent_channels=4, base_channels=32, channel_multiplier=[1, 1],
                       num_res_blocks=1, attn_resolutions=[], temporal_downsample_factor=4, hidden_size=32),
        text_config=dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=num_layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, attention_dropout=0.0,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        vocabulary_map=vocab,
    )
    torch.manual_seed(seed)
    model = Emu3ForConditionalGeneration(config).eval()
    return model, tokenizer


def save_tiny_emu3(folder: str | Path, **options) -> Path:
    """Write a tiny random Emu3 checkpoint folder (model + tokenizer) that from_pretrained can read."""
    folder = Path(folder)
    model, tokenizer = tiny_emu3(**options)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_pairs(root: str | Path, count: int = 6, side: int = 32, seed: int = 0, val: int = 2) -> Path:
    """ICG-CXR-layout pair folders of smooth random images with one new bright disc each (training/data.py reads them).

    The last `val` pairs are split "val", the rest "train". Synthetic test data only.
    """
    import json

    import cv2
    import numpy as np

    root = Path(root)
    rng = np.random.default_rng(seed)
    for index in range(count):
        pid = f"pair-{index}"
        folder = root / pid
        folder.mkdir(parents=True, exist_ok=True)
        ref = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), side / 16)
        ref = (ref - ref.min()) / (ref.max() - ref.min() + 1e-9) * 0.6 + 0.2
        x, y = (int(v) for v in rng.integers(side // 4, 3 * side // 4, size=2))
        mask = np.zeros_like(ref)
        cv2.circle(mask, (x, y), max(side // 8, 1), 1.0, -1)
        flu = np.clip(ref + 0.3 * mask, 0, 1)
        for name, image in (("ref", ref), ("flu", flu), ("mask", mask)):
            cv2.imwrite(str(folder / f"{pid}-{name}.png"), np.round(image * 255).astype(np.uint8))
        record = {"source-description": "Frontal chest radiograph.", "progression-description": f"New opacity {index}.",
                  "lesion_points": [{"x": x, "y": y, "confidence": 5}], "split": "val" if index >= count - val else "train"}
        (folder / f"{pid}.json").write_text(json.dumps(record))
    return root
