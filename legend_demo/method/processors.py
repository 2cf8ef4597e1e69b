"""GBCA attention processors for diffusers' FluxTransformer2DModel (thesis eqs. 5.6–5.10).

Installed per block through diffusers' processor API (`attn.set_processor`) and restored on exit — never a
fork or a patch of diffusers. One processor class serves both block kinds:
- double-stream blocks get text and image streams separately (`encoder_hidden_states` is given);
- single-stream blocks get the joint [text; image] sequence; its text length comes from the transformer's
  own inputs (read by a forward pre-hook), never from a constant.

Global layer index: double-stream blocks 0 … D−1, then single-stream blocks D … D+S−1
(FLUX.1-dev: D = 19, S = 38, layers 0–56).

Batch layout in dual-path mode: the first half of the rows is the source path, the second half the edit
path (row b + B/2 edits row b). Per-request state lives in one explicit `GBCAState` object.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.embeddings import apply_rotary_emb

from .layer_spec import check_layers
from .strength import StrengthFn
CAPTURE_HEAD_CHUNK = 4  # heads per chunk when materialising attention probabilities for capture


def attention_layers(transformer) -> list[tuple[int, str, torch.nn.Module]]:
    """[(global layer index, "double" | "single", attention module)] in execution order."""
    double = [(i, "double", block.attn) for i, block in enumerate(transformer.transformer_blocks)]
    offset = len(double)
    single = [(offset + i, "single", block.attn) for i, block in enumerate(transformer.single_transformer_blocks)]
    return double + single


@dataclass
class GBCAState:
    """Everything the installed processors need for one request (or one training batch), plus what they captured.

    prior: flattened Gaussian prior r_img in row-major token order, (N_img,) for every row, or (P, N_img) with
        one row per pair (dual mode: P = B/2 edit rows) or per batch row (single mode: P = B); None = no bias.
    strength: a fixed s, a tensor of per-row strengths (B,), or s(τ) computed from the timesteps the
        transformer receives (one τ per row).
    dual: rows are [source; edit] — inject and bias only the edit rows.
    """

    prior: torch.Tensor | None = None
    strength: float | torch.Tensor | StrengthFn = 0.0
    bias_layers: frozenset[int] = frozenset()
    inject_layers: frozenset[int] = frozenset()
    capture_layers: frozenset[int] = frozenset()
    dual: bool = True
    # read from the transformer's inputs on every forward call
    text_len: int | None = None
    image_len: int | None = None
    current_strength: torch.Tensor | None = None  # (B,) per row, or a scalar
    # written by the capture step
    captures: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # layer → [(N_img,)] per call
    text_mass: dict[int, list[float]] = field(default_factory=dict)  # layer → [share to text keys] per call

    def read_inputs(self, module, args, kwargs) -> None:
        """Forward pre-hook on the transformer: text/image lengths and s(τ) for this call."""
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        text = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        timestep = kwargs.get("timestep", args[3] if len(args) > 3 else None)
        self.text_len, self.image_len = int(text.shape[1]), int(hidden.shape[1])
        if self.prior is not None and self.prior.shape[-1] != self.image_len:
            raise ValueError(f"prior has {self.prior.shape[-1]} cells but the model sees {self.image_len} image tokens")
        if callable(self.strength):
            self.current_strength = self.strength(timestep.reshape(-1))  # (B,): s(τ) per row
        elif isinstance(self.strength, torch.Tensor):
            self.current_strength = self.strength.reshape(-1)  # (B,) or (1,)
        else:
            self.current_strength = torch.tensor(float(self.strength))

    def bias_active(self, layer: int) -> bool:
        if self.prior is None or layer not in self.bias_layers:
            return False
        return callable(self.strength) or bool(torch.as_tensor(self.strength).ne(0).any())

    def key_bias(self, layer: int, batch: int, text_len: int, like: torch.Tensor) -> torch.Tensor | None:
        """Per-key additive bias s·r_seq (eq. 5.6–5.7) as a (B, 1, 1, S) mask, or None when inactive.

        Text keys get 0; source rows get 0 in dual mode; broadcasting over heads and queries keeps SDPA's
        memory-efficient kernels usable (no S×S matrix).
        """
        if not self.bias_active(layer):
            return None
        prior = self.prior.to(device=like.device, dtype=like.dtype).reshape(-1, self.prior.shape[-1])  # (P, N_img)
        biased_rows = batch // 2 if self.dual else batch
        if prior.shape[0] not in (1, biased_rows):
            raise ValueError(f"prior has {prior.shape[0]} rows for {biased_rows} biased rows of a batch of {batch}")
        prior = prior.expand(biased_rows, -1)  # (B_e, N_img)
        if self.dual:
            prior = torch.cat([torch.zeros_like(prior), prior])  # (B, N_img): source rows unbiased
        strength = self.current_strength.to(device=like.device, dtype=like.dtype).reshape(-1, 1)  # (B, 1) or (1, 1)
        r_seq = torch.cat([prior.new_zeros(batch, text_len), prior], dim=1)  # (B, S)
        return (strength * r_seq).reshape(batch, 1, 1, -1)  # (B, 1, 1, S)

    def edit_strength(self) -> float:
        """The strength this call applied to the (first) edit row, for provenance."""
        values = self.current_strength.reshape(-1)
        return float(values[values.numel() // 2] if self.dual and values.numel() > 1 else values[0])

    def record(self, layer: int, image_map: torch.Tensor, text_share: float) -> None:
        self.captures.setdefault(layer, []).append(image_map.detach().float().cpu())
        self.text_mass.setdefault(layer, []).append(float(text_share))


def qkv_projections(attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None):
    """Image (and, in double-stream blocks, text) query/key/value projections, fused or not: (q, k, v, eq, ek, ev)."""
    if getattr(attn, "fused_projections", False):
        query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        text = (None, None, None)
        if encoder_hidden_states is not None and hasattr(attn, "to_added_qkv"):
            text = attn.to_added_qkv(encoder_hidden_states).chunk(3, dim=-1)
        return (query, key, value, *text)
    query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
    text = (None, None, None)
    if encoder_hidden_states is not None and attn.added_kv_proj_dim is not None:
        text = (attn.add_q_proj(encoder_hidden_states), attn.add_k_proj(encoder_hidden_states),
                attn.add_v_proj(encoder_hidden_states))
    return (query, key, value, *text)


def _combine_masks(stock: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor | None:
    if stock is None or bias is None:
        return bias if stock is None else stock
    if stock.dtype == torch.bool:
        stock = torch.zeros_like(stock, dtype=bias.dtype).masked_fill(~stock, float("-inf"))
    return stock + bias


def inject_source_kv(
    key: torch.Tensor, value: torch.Tensor, text_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Structural feature injection: edit rows take the source rows' image-token K and V; text K/V stay their own.

    key, value: (B, S, H, D) with B = 2·B_src, rows [source; edit], tokens [text; image].
    """
    half = key.shape[0] // 2
    key, value = key.clone(), value.clone()
    key[half:, text_len:] = key[:half, text_len:]
    value[half:, text_len:] = value[:half, text_len:]
    return key, value


def capture_attention(
    query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, text_len: int, scale: float, dual: bool
) -> tuple[torch.Tensor, float]:
    """Softmax attention of edit-image queries over all keys, mean over heads, queries and edit rows.

    query, key: (B, S, H, D) after RoPE; mask: (B, 1, 1, S) or None.
    Returns the image-key part (N_img,) renormalised to sum to 1, and the share that went to text keys.
    """
    rows = slice(key.shape[0] // 2, None) if dual else slice(None)
    q = query[rows, text_len:].permute(0, 2, 1, 3).float()  # (Be, H, N_img, D)
    k = key[rows].permute(0, 2, 1, 3).float()  # (Be, H, S, D)
    m = None if mask is None else mask[rows].float()  # (Be, 1, 1, S)
    total = torch.zeros(k.shape[-2], dtype=torch.float32, device=k.device)  # (S,)
    for h0 in range(0, q.shape[1], CAPTURE_HEAD_CHUNK):
        logits = q[:, h0 : h0 + CAPTURE_HEAD_CHUNK] @ k[:, h0 : h0 + CAPTURE_HEAD_CHUNK].transpose(-1, -2) * scale
        if m is not None:
            logits = logits + m  # (Be, h, N_img, S)
        total += logits.softmax(dim=-1).sum(dim=(0, 1, 2))  # (S,)
    total /= total.sum()
    image_part = total[text_len:]
    return image_part / image_part.sum(), float(total[:text_len].sum())


class GBCAProcessor:
    """FluxAttnProcessor plus GBCA: vital-layer K/V injection, Gaussian key bias, attention capture.

    With no injection and zero bias at this layer it computes exactly what diffusers' FluxAttnProcessor does.
    """

    def __init__(self, layer: int, state: GBCAState, attention_backend=None):
        self.layer = layer
        self.state = state
        self._attention_backend = attention_backend
        self._parallel_config = None

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: torch.Tensor | None = None,
    ):
        state = self.state
        query, key, value, enc_query, enc_key, enc_value = qkv_projections(attn, hidden_states, encoder_hidden_states)
        query = attn.norm_q(query.unflatten(-1, (-1, attn.head_dim)))  # (B, N, H, D)
        key = attn.norm_k(key.unflatten(-1, (-1, attn.head_dim)))
        value = value.unflatten(-1, (-1, attn.head_dim))

        if encoder_hidden_states is not None:  # double-stream block: prepend the text stream
            text_len = encoder_hidden_states.shape[1]
            enc_query = attn.norm_added_q(enc_query.unflatten(-1, (-1, attn.head_dim)))
            enc_key = attn.norm_added_k(enc_key.unflatten(-1, (-1, attn.head_dim)))
            enc_value = enc_value.unflatten(-1, (-1, attn.head_dim))
            query = torch.cat([enc_query, query], dim=1)  # (B, S, H, D)
            key = torch.cat([enc_key, key], dim=1)
            value = torch.cat([enc_value, value], dim=1)
        else:  # single-stream block: the sequence is already [text; image]
            if state.text_len is None:
                raise RuntimeError("GBCA processors need the transformer's forward pre-hook (use gbca_installed)")
            text_len = state.text_len

        if self.layer in state.inject_layers:
            if query.shape[0] % 2:
                raise ValueError(f"K/V injection needs [source; edit] rows, got an odd batch of {query.shape[0]}")
            key, value = inject_source_kv(key, value, text_len)  # before RoPE (eq. 5.10)

        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
            key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)

        mask = _combine_masks(attention_mask, state.key_bias(self.layer, query.shape[0], text_len, query))
        if self.layer in state.capture_layers:
            image_map, text_share = capture_attention(query, key, mask, text_len, attn.head_dim**-0.5, state.dual)
            state.record(self.layer, image_map, text_share)

        out = dispatch_attention_fn(
            query, key, value, attn_mask=mask, backend=self._attention_backend, parallel_config=self._parallel_config
        )
        out = out.flatten(2, 3).to(query.dtype)  # (B, S, H·D)

        if encoder_hidden_states is None:
            return out
        enc_out, out = out.split_with_sizes([text_len, out.shape[1] - text_len], dim=1)
        out = attn.to_out[1](attn.to_out[0](out.contiguous()))
        enc_out = attn.to_add_out(enc_out.contiguous())
        return out, enc_out


@contextmanager
def gbca_installed(transformer, state: GBCAState) -> Iterator[GBCAState]:
    """Install a GBCAProcessor on every attention layer for the duration of the block; restore on exit."""
    num_layers = len(attention_layers(transformer))
    for name in ("bias_layers", "inject_layers", "capture_layers"):
        setattr(state, name, check_layers(name.replace("_", " "), getattr(state, name), num_layers))
    saved = dict(transformer.attn_processors)
    handle = transformer.register_forward_pre_hook(state.read_inputs, with_kwargs=True)
    try:
        for layer, _, attn in attention_layers(transformer):
            backend = getattr(attn.processor, "_attention_backend", None)
            attn.set_processor(GBCAProcessor(layer, state, backend))
        yield state
    finally:
        handle.remove()
        transformer.set_attn_processor(saved)
