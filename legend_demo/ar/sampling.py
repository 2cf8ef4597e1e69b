"""KV-cached autoregressive decoding of the follow-up tokens X̂_B (thesis eq. 4.13).

Per step, as Emu3-Gen samples images with transformers' generate(): classifier-free guidance on log-softmax
scores (uncond + w·(cond − uncond), what Emu3's UnbatchedClassifierFreeGuidanceLogitsProcessor computes, here
with the conditional and unconditional rows in one batch and transformers' ClassifierFreeGuidanceLogitsProcessor),
then Emu3's structure constraint (PrefixConstrainedLogitsProcessor: visual tokens inside a row, the end-of-line
token at its end), temperature, top-k and top-p, and a draw from a seeded generator. GBCA acts inside every
forward call through the state's per-key bias (attention.py), on the prefill and on every decoding step alike.

Keep-region blending: where the caller's keep mask is True (edit-region weight W = 0) the reference token X_A
at the same grid cell is emitted instead of a draw, and fed back like any other token.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import (
    ClassifierFreeGuidanceLogitsProcessor,
    LogitsProcessorList,
    PrefixConstrainedLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ..core.errors import GenerationError
from .attention import ARGBCAState
from .backbone import ARBackbone
from .sequence import RowBatch, position_ids

RowCallback = Callable[[int, int], None]  # (rows done, rows) — may raise to cancel
EMU3_GUIDANCE = 3.0  # Emu3-Gen's classifier-free guidance scale
EMU3_TOP_K = 2048  # Emu3-Gen's top-k


@dataclass(frozen=True)
class SamplingOptions:
    guidance_scale: float = EMU3_GUIDANCE  # 1 = no guidance (no unconditional row)
    top_k: int = EMU3_TOP_K
    top_p: float = 1.0
    temperature: float = 1.0

    def check(self) -> None:
        if not 1.0 <= self.guidance_scale <= 20.0:
            raise ValueError(f"guidance_scale={self.guidance_scale} is outside [1, 20] (1 = off)")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k={self.top_k!r} must be a whole number ≥ 1")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p} is outside (0, 1]")
        if not 0.0 < self.temperature <= 10.0:
            raise ValueError(f"temperature={self.temperature} is outside (0, 10]")

    @property
    def guided(self) -> bool:
        return self.guidance_scale != 1.0


@dataclass
class SampledImage:
    codes: torch.Tensor  # (h·w,) VQ codes of X̂_B, row-major
    kept: torch.Tensor  # (h·w,) bool: the reference token was emitted (keep region)
    seconds: float  # decoding time after the prefill
    tokens: int  # tokens fed after the prefill (visual + eol)


def logits_processors(vocab_visual: torch.Tensor, options: SamplingOptions) -> LogitsProcessorList:
    """Emu3's per-step processors after guidance: visual tokens only, temperature, top-k, top-p."""
    allowed = vocab_visual
    processors = [PrefixConstrainedLogitsProcessor(lambda batch_id, ids: allowed.to(ids.device), num_beams=1)]
    if options.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(options.temperature))
    processors.append(TopKLogitsWarper(top_k=options.top_k))
    if options.top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p=options.top_p))
    return LogitsProcessorList(processors)


def draw_token(logits: torch.Tensor, history: torch.Tensor, guidance, processors, generator) -> torch.Tensor:
    """One visual token for the conditional row from last-position logits (B, V); history (1, n) its ids so far."""
    scores = logits.float()
    if torch.isnan(scores).any():
        raise GenerationError("the model produced NaN logits while sampling")
    if guidance is not None:  # rows [cond; uncond] → guided (1, V)
        scores = guidance(history, scores.log_softmax(dim=-1))
    scores = processors(history, scores[:1])  # (1, V)
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[0, 0]  # ()


def sample_follow_up(
    backbone: ARBackbone,
    batch: RowBatch,
    state: ARGBCAState | None,
    options: SamplingOptions,
    seed: int,
    reference_codes: torch.Tensor,
    keep: torch.Tensor | None = None,
    on_row: RowCallback | None = None,
) -> SampledImage:
    """Decode X̂_B after the rows' prefixes: batch rows [conditional; unconditional (when guided)].

    reference_codes (h·w,) X_A codes (for the keep region); keep (h·w,) bool or None.
    """
    options.check()
    rows_expected = 2 if options.guided else 1
    if batch.ids.shape[0] != rows_expected:
        raise ValueError(f"guidance_scale={options.guidance_scale} needs {rows_expected} row(s), got {batch.ids.shape[0]}")
    h, w = batch.layouts[0].grid
    vocab, device = backbone.vocab, backbone.device
    processors = logits_processors(vocab.visual_ids(device), options)
    guidance = ClassifierFreeGuidanceLogitsProcessor(options.guidance_scale) if options.guided else None
    generator = torch.Generator(device=device).manual_seed(seed)
    visual = vocab.visual_ids(device)
    total = h * (w + 1)
    backbone.check_length(batch.ids.shape[1] + total)

    mask = batch.attention_mask.to(device)
    positions = position_ids(mask)
    _choose_queries(state, rows_expected, batch.ids.shape[1], count=True)  # the prefill's last query predicts X̂_B[0]
    logits, cache = backbone.forward(batch.ids, mask, positions, None, state, logits_to_keep=1, use_cache=True)
    history = torch.empty((1, total), dtype=torch.long, device=device)
    kept = torch.zeros(h * w, dtype=torch.bool)
    started = time.perf_counter()
    for t in range(total):
        row, col = divmod(t, w + 1)
        if col == w:
            token = torch.tensor(vocab.eol, device=device)  # Emu3's row structure: <eol> closes every row
        elif keep is not None and bool(keep[row * w + col]):
            code = int(reference_codes[row * w + col])
            token, kept[row * w + col] = visual[code], True
        else:
            token = draw_token(logits[:, -1], history[:, :t], guidance, processors, generator)
        history[0, t] = token
        if col == w and on_row is not None:
            on_row(row + 1, h)
        if t == total - 1:
            break
        _choose_queries(state, rows_expected, 1, count=(t + 1) % (w + 1) != w)
        mask = torch.cat([mask, mask.new_ones((rows_expected, 1))], dim=1)
        positions = positions[:, -1:] + 1
        logits, cache = backbone.forward(token.reshape(1, 1).expand(rows_expected, 1), mask, positions, cache, state,
                                         use_cache=True)
    seconds = time.perf_counter() - started
    codes = vocab.to_codes(history[0].cpu().reshape(h, w + 1)[:, :w].reshape(-1))  # (h·w,)
    return SampledImage(codes=codes, kept=kept, seconds=seconds, tokens=total)


def _choose_queries(state: ARGBCAState | None, rows: int, q_len: int, count: bool) -> None:
    """The maps count the conditional row's last query when it predicts a visual token (`count`)."""
    if state is None:
        return
    chosen = torch.zeros((rows, q_len), dtype=torch.bool)
    chosen[0, -1] = count
    state.query_mask = chosen
