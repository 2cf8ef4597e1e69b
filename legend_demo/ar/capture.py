"""Softmax attention of chosen queries over all keys, for the layer-wise maps (thesis eqs. 4.2–4.4).

The thesis averages pre-softmax logits; logits can be negative, so a share of their sum is undefined — the maps
here average softmax *probabilities* (as metrics.py documents). Probabilities are computed a few heads at a time
for the chosen queries only, so no full S×S×H tensor is ever held.
"""
from __future__ import annotations

import torch

HEAD_CHUNK = 4  # heads per chunk when materialising probabilities


def visible_logit_mask(
    attention_mask: torch.Tensor | None, row: int, queries: torch.Tensor, q_len: int, kv_len: int, device
) -> torch.Tensor:
    """Additive (n, kv_len) mask (0 visible, −inf hidden) for the given query indices of one row.

    attention_mask: the model's 4-D mask (B or 1, 1, q_len, kv_len), bool (True = visible) or additive float, or
    None for plain causal attention (query i sees keys j ≤ i + kv_len − q_len, as SDPA's is_causal does).
    """
    if attention_mask is None:
        absolute = queries.to(device)[:, None] + (kv_len - q_len)  # (n, 1)
        visible = torch.arange(kv_len, device=device)[None, :] <= absolute  # (n, kv_len)
    else:
        picked = attention_mask[min(row, attention_mask.shape[0] - 1), 0][queries.to(attention_mask.device)]
        if picked.dtype != torch.bool:
            return picked.float().to(device)  # (n, kv_len) already additive
        visible = picked.to(device)
    return torch.zeros(visible.shape, device=device).masked_fill(~visible, float("-inf"))


def attention_mass(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    bias: torch.Tensor | None,
    query_mask: torch.Tensor,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the sum over chosen queries of their head-averaged softmax attention over keys.

    query (B, H, q, D), key (B, H_kv, kv, D) after RoPE; bias (B or 1, 1, 1, kv) additive or None;
    query_mask (B, q) bool. Returns mass (B, kv) float32 (each chosen query contributes 1 in total) and the
    number of chosen queries per row (B,).
    """
    batch, heads, q_len, _ = query.shape
    kv_len = key.shape[2]
    groups = heads // key.shape[1]
    mass = torch.zeros((batch, kv_len), dtype=torch.float32, device=query.device)
    counts = query_mask.sum(dim=1).to(torch.long)
    for b in range(batch):
        chosen = query_mask[b].nonzero().reshape(-1)
        if chosen.numel() == 0:
            continue
        mask = visible_logit_mask(attention_mask, b, chosen, q_len, kv_len, query.device)  # (n, kv)
        if bias is not None:
            mask = mask + bias[min(b, bias.shape[0] - 1), 0, 0].float()  # (n, kv)
        q = query[b][:, chosen.to(query.device)].float()  # (H, n, D)
        k = key[b].float().repeat_interleave(groups, dim=0)  # (H, kv, D)
        for h0 in range(0, heads, HEAD_CHUNK):
            logits = q[h0 : h0 + HEAD_CHUNK] @ k[h0 : h0 + HEAD_CHUNK].transpose(-1, -2) * scaling  # (h, n, kv)
            mass[b] += (logits + mask).softmax(dim=-1).sum(dim=(0, 1)) / heads  # (kv,)
    return mass, counts
