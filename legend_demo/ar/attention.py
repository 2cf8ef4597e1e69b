"""Gaussian-Biased Causal Attention for transformers' decoders through the AttentionInterface (thesis eq. 4.11).

S' = QKᵀ/√d + s_ℓ·B + M: B is the flattened prior r on the X_A visual keys and 0 on every other key (text,
special tokens, eol, X_B, padding), broadcast over heads and queries as a (B, 1, 1, S_k) per-key bias; M is the
model's own causal/padding mask, untouched. The bias goes to transformers' SDPA function as its `position_bias`,
which merges it with the mask (a per-key tensor during KV-cached decoding; SDPA keeps its fused kernels).

The function is registered once under GBCA_ATTENTION (with SDPA's mask builder) and selected for the text
decoder only with `model.set_attn_implementation({"text_config": GBCA_ATTENTION})` — no fork, no patch. The
per-request state travels as the keyword argument `gbca=` of the model's forward call (transformers hands
extra keyword arguments down to the attention function); without it, or with s = 0, the function is exactly
SDPA. The same rule serves teacher forcing and sampling.

s_ℓ: a fixed strength (the UI's override; 0 = off) or a StrengthMLP. AR decoding has no flow time τ, so the
MLP's input is the layer's relative depth ℓ/(L−1): one 2-layer MLP gives each biased layer its own strength,
identical for every query, head and decoding step (so teacher forcing and sampling apply the same bias).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ..method.layer_spec import check_layers
from ..method.strength import StrengthFn
from .capture import attention_mass
from .sequence import RowBatch, key_kinds, key_prior

GBCA_ATTENTION = "legend_gbca"


@dataclass
class ARGBCAState:
    """Everything the GBCA attention function needs for one request or batch, plus what it captured.

    key_prior: (B or 1, S_max) prior on each row's X_A visual key columns, 0 elsewhere (sequence.key_prior).
    a_columns / text_keys: (B, N_A) X_A visual key columns and (B, S_max) X_D key columns, for the maps.
    query_mask: (B, q) bool, set by the caller before each forward call: which queries the maps count.
    """

    num_layers: int
    key_prior: torch.Tensor | None = None
    strength: float | StrengthFn = 0.0
    bias_layers: frozenset[int] = frozenset()
    capture_layers: frozenset[int] = frozenset()
    a_columns: torch.Tensor | None = None
    text_keys: torch.Tensor | None = None
    query_mask: torch.Tensor | None = None
    keep_calls: bool = False  # keep one map per forward call (e.g. per generated row) as well as the sums
    # written by the capture step
    mass: dict[int, torch.Tensor] = field(default_factory=dict)  # layer → (N_A,) summed attention to X_A keys
    text_mass: dict[int, float] = field(default_factory=dict)  # layer → summed attention to X_D keys
    counts: dict[int, int] = field(default_factory=dict)  # layer → number of queries counted
    calls: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # layer → [(N_A,)] per call if keep_calls
    _cached: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # s_ℓ without gradients
    _bias_cache: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)  # (B, 1, 1, S_max) per layer

    def __post_init__(self) -> None:
        self.bias_layers = check_layers("GBCA layers", self.bias_layers, self.num_layers)
        self.capture_layers = check_layers("capture layers", self.capture_layers, self.num_layers)
        if self.key_prior is not None and self.key_prior.ndim != 2:
            raise ValueError(f"key_prior must be (B, S), got shape {tuple(self.key_prior.shape)}")
        if not callable(self.strength) and not float(self.strength) >= 0:
            raise ValueError(f"bias strength must be ≥ 0, got {self.strength}")

    @classmethod
    def for_batch(cls, batch: RowBatch, length: int, num_layers: int, prior: torch.Tensor | None,
                  strength: float | StrengthFn, bias_layers, capture_layers, keep_calls: bool = False) -> "ARGBCAState":
        """The state for `batch` whose rows grow to `length` keys; prior (N_A,) the flattened r, or None (no bias)."""
        a_columns, text_keys = key_kinds(batch.layouts, batch.offsets, length)
        rows = None if prior is None else key_prior(prior, batch.layouts, batch.offsets, length)  # (B, length)
        return cls(num_layers=num_layers, key_prior=rows, strength=strength, bias_layers=bias_layers,
                   capture_layers=capture_layers, a_columns=a_columns, text_keys=text_keys, keep_calls=keep_calls)

    def bias_active(self, layer: int) -> bool:
        if self.key_prior is None or layer not in self.bias_layers:
            return False
        return callable(self.strength) or float(self.strength) != 0.0

    def layer_strength(self, layer: int) -> torch.Tensor:
        """s_ℓ as a 0-d tensor: the fixed value, or the MLP at depth ℓ/(L−1) (cached when no gradient is needed)."""
        if not callable(self.strength):
            return torch.tensor(float(self.strength))
        if layer in self._cached and not torch.is_grad_enabled():
            return self._cached[layer]
        depth = torch.tensor([layer / max(self.num_layers - 1, 1)], dtype=torch.float32)
        if isinstance(self.strength, torch.nn.Module):
            depth = depth.to(next(self.strength.parameters()).device)
        value = self.strength(depth).reshape(())
        if not torch.is_grad_enabled():
            self._cached[layer] = value
        return value

    def strengths(self) -> dict[int, float]:
        """{layer: s_ℓ} over the biased layers, for provenance."""
        with torch.no_grad():
            return {layer: round(float(self.layer_strength(layer)), 6) for layer in sorted(self.bias_layers)}

    def key_bias(self, layer: int, batch: int, kv_len: int, like: torch.Tensor) -> torch.Tensor | None:
        """(B, 1, 1, kv_len) additive bias s_ℓ·r over the keys seen so far, or None when inactive at this layer.

        Without gradients (sampling, profiling) the full-length bias is made once per layer and sliced per call.
        """
        if not self.bias_active(layer):
            return None
        if self.key_prior.shape[1] < kv_len or self.key_prior.shape[0] not in (1, batch):
            raise ValueError(f"key_prior {tuple(self.key_prior.shape)} does not cover {batch} rows of {kv_len} keys")
        if torch.is_grad_enabled():
            return self._full_bias(layer, batch, like)[..., :kv_len]
        key = (layer, batch, like.dtype, like.device)
        if key not in self._bias_cache:
            self._bias_cache[key] = self._full_bias(layer, batch, like)
        return self._bias_cache[key][..., :kv_len]

    def _full_bias(self, layer: int, batch: int, like: torch.Tensor) -> torch.Tensor:
        prior = self.key_prior.to(device=like.device, dtype=like.dtype)  # (B or 1, S_max)
        strength = self.layer_strength(layer).to(device=like.device, dtype=like.dtype)
        return (strength * prior).expand(batch, -1).reshape(batch, 1, 1, -1)  # (B, 1, 1, S_max)

    def record(self, layer: int, mass: torch.Tensor, counts: torch.Tensor) -> None:
        """Add the X_A-key and X_D-key parts of one call's attention mass (B, kv) to the layer's sums."""
        kv_len = mass.shape[1]
        a_columns = self.a_columns.to(mass.device)  # (B, N_A)
        image = mass.gather(1, a_columns).sum(dim=0).detach().double().cpu()  # (N_A,)
        text = float((mass * self.text_keys[:, :kv_len].to(mass.device)).sum()) if self.text_keys is not None else 0.0
        self.mass[layer] = self.mass.get(layer, 0) + image
        self.text_mass[layer] = self.text_mass.get(layer, 0.0) + text
        self.counts[layer] = self.counts.get(layer, 0) + int(counts.sum())
        if self.keep_calls:
            self.calls.setdefault(layer, []).append(image.float())

    def reset_captures(self) -> None:
        self.mass, self.text_mass, self.counts, self.calls = {}, {}, {}, {}


def gbca_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    gbca: ARGBCAState | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: SDPA plus the per-key Gaussian bias on this layer's X_A keys.

    query (B, H, q, D), key/value (B, H_kv, kv, D), attention_mask the model's (B, 1, q, kv) mask or None.
    """
    layer = getattr(module, "layer_idx", None)
    if gbca is None or layer is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    bias = gbca.key_bias(layer, query.shape[0], key.shape[2], query)  # (B, 1, 1, kv) or None
    if layer in gbca.capture_layers and gbca.query_mask is not None and gbca.query_mask.any():
        scaling = kwargs.get("scaling") or module.scaling
        with torch.no_grad():
            mass, counts = attention_mass(query, key, attention_mask, bias, gbca.query_mask, scaling)
        gbca.record(layer, mass, counts)
    return sdpa_attention_forward(module, query, key, value, attention_mask, position_bias=bias, **kwargs)


def register_gbca_attention() -> None:
    """Register the function and SDPA's mask builder under GBCA_ATTENTION (idempotent)."""
    AttentionInterface.register(GBCA_ATTENTION, gbca_attention)
    AttentionMaskInterface.register(GBCA_ATTENTION, sdpa_mask)


def use_gbca_attention(model) -> None:
    """Select the GBCA function for an Emu3ForConditionalGeneration's text decoder (the VQ model keeps its own)."""
    register_gbca_attention()
    model.set_attn_implementation({"text_config": GBCA_ATTENTION})
