"""The LeGend sequence [X_A ; X_D ; X_B] (thesis §4.2.1, Fig. 4.3) in Emu3's own image layout:

    <bos> <boi> "h*w" <img> X_A (h rows of w visual tokens + <eol>) <eof> <eoi>  X_D  <boi> "h*w" <img> X_B …

X_A: reference-image tokens, X_D: progression-text tokens, X_B: follow-up image tokens (generated or, under
teacher forcing, the ground truth). Causality is the model's own causal mask; nothing here changes it.
Rows of a batch are left-padded so that every row's X_B starts at the same column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .vocab import Emu3Vocab

TextEncoder = Callable[[str], list[int]]  # text → token ids, without special tokens


@dataclass(frozen=True)
class SequenceLayout:
    """Positions of the parts of one unpadded row (add the row's left padding for batch columns)."""

    grid: tuple[int, int]
    a_start: int  # position of X_A's first visual token
    text: tuple[int, int]  # [start, end) of X_D
    b_start: int  # position of X_B's first token (= the length of the prefix the sampler starts from)

    @property
    def a_visual(self) -> torch.Tensor:
        """(h·w,) positions of X_A's visual tokens, row-major (the eol tokens are skipped)."""
        return self.a_start + _visual_offsets(self.grid)

    @property
    def b_visual(self) -> torch.Tensor:
        """(h·w,) positions of X_B's visual tokens, row-major."""
        return self.b_start + _visual_offsets(self.grid)

    @property
    def b_length(self) -> int:
        """Tokens in X_B: h rows of w visual tokens plus one eol each."""
        h, w = self.grid
        return h * (w + 1)


def _visual_offsets(grid: tuple[int, int]) -> torch.Tensor:
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")  # (h, w) each
    return (rows * (w + 1) + cols).reshape(-1)  # (h·w,)


def image_rows(vocab: Emu3Vocab, codes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(h·w,) VQ codes → (h·(w+1),) token ids: each row of w visual tokens closed by <eol>."""
    h, w = grid
    if codes.numel() != h * w:
        raise ValueError(f"expected {h * w} codes for a {h}x{w} grid, got {codes.numel()}")
    tokens = vocab.to_tokens(codes.reshape(h, w).cpu())  # (h, w)
    eol = torch.full((h, 1), vocab.eol, dtype=torch.long)
    return torch.cat([tokens, eol], dim=1).reshape(-1)  # (h·(w+1),)


def image_header(vocab: Emu3Vocab, encode_text: TextEncoder, grid: tuple[int, int]) -> list[int]:
    """<boi> "h*w" <img>: what precedes an image's rows (Emu3Processor writes the same)."""
    h, w = grid
    return [vocab.boi, *encode_text(f"{h}*{w}"), vocab.image_wrapper]


def build_prefix(
    vocab: Emu3Vocab, encode_text: TextEncoder, codes_a: torch.Tensor, text: str, grid: tuple[int, int]
) -> tuple[torch.Tensor, SequenceLayout]:
    """[<bos>; X_A; X_D; X_B header] as (S,) ids and its layout; ValueError for an empty text."""
    text_ids = encode_text(text.strip()) if isinstance(text, str) else []
    if not text_ids:
        raise ValueError("the progression text is empty: X_D needs at least one token")
    header = image_header(vocab, encode_text, grid)
    a_start = 1 + len(header)
    a_rows = image_rows(vocab, codes_a, grid)
    text_start = a_start + a_rows.numel() + 2  # after <eof> <eoi>
    ids = [vocab.bos, *header, *a_rows.tolist(), vocab.eof, vocab.eoi, *text_ids, *header]
    layout = SequenceLayout(grid, a_start, (text_start, text_start + len(text_ids)), len(ids))
    return torch.tensor(ids, dtype=torch.long), layout


def teacher_forcing_row(
    vocab: Emu3Vocab, encode_text: TextEncoder, codes_a: torch.Tensor, codes_b: torch.Tensor, text: str,
    grid: tuple[int, int],
) -> tuple[torch.Tensor, SequenceLayout]:
    """[X_A; X_D; X_B] with the ground-truth X_B: (S,) ids ending with X_B's last <eol>."""
    prefix, layout = build_prefix(vocab, encode_text, codes_a, text, grid)
    return torch.cat([prefix, image_rows(vocab, codes_b, grid)]), layout


@dataclass
class RowBatch:
    """Rows left-padded to one length: ids (B, S), attention mask (B, S), each row's offset and layout."""

    ids: torch.Tensor
    attention_mask: torch.Tensor
    offsets: list[int]
    layouts: list[SequenceLayout]


def make_batch(rows: list[torch.Tensor], layouts: list[SequenceLayout], pad_id: int) -> RowBatch:
    ids, mask, offsets = left_pad(rows, pad_id)
    return RowBatch(ids, mask, offsets, list(layouts))


def left_pad(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Rows of unequal length → ids (B, S), attention mask (B, S) with 0 on padding, per-row left offsets."""
    length = max(row.numel() for row in rows)
    offsets = [length - row.numel() for row in rows]
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for b, (row, offset) in enumerate(zip(rows, offsets)):
        ids[b, offset:] = row
        mask[b, offset:] = 1
    return ids, mask, offsets


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, S) positions counting only real tokens (padding gets 0), as transformers' generate() does."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def key_prior(
    prior: torch.Tensor, layouts: list[SequenceLayout], offsets: list[int], length: int
) -> torch.Tensor:
    """Flattened prior r (N_A,) placed on each row's X_A visual keys, 0 on every other key: (B, length)."""
    rows = torch.zeros((len(layouts), length), dtype=torch.float32)
    for b, (layout, offset) in enumerate(zip(layouts, offsets)):
        rows[b, offset + layout.a_visual] = prior.float().reshape(-1)
    return rows


def key_kinds(layouts: list[SequenceLayout], offsets: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N_A) X_A visual key columns and (B, length) bool X_D text key columns, per row."""
    a_columns = torch.stack([offset + layout.a_visual for layout, offset in zip(layouts, offsets)])  # (B, N_A)
    text = torch.zeros((len(layouts), length), dtype=torch.bool)
    for b, (layout, offset) in enumerate(zip(layouts, offsets)):
        text[b, offset + layout.text[0] : offset + layout.text[1]] = True
    return a_columns, text
