"""GBCA through transformers' AttentionInterface on a tiny random Emu3 (CPU, no downloads): stock equivalence at
s = 0 on every layer, the bias only on X_A keys, causality, capture vs a hand computation, maps summing to 1."""
import numpy as np
import pytest
import torch
from transformers.models.emu3.modeling_emu3 import apply_rotary_pos_emb

from legend_demo.ar.attention import GBCA_ATTENTION, ARGBCAState, gbca_attention
from legend_demo.method.layer_spec import check_layers
from legend_demo.ar.backbone import ARBackbone
from legend_demo.ar.profiling import layer_attention, teacher_forcing_attention
from legend_demo.ar.sequence import build_prefix, key_prior, make_batch, teacher_forcing_row
from legend_demo.ar.tiny import TINY_AR_SIDE, tiny_emu3
from legend_demo.method.strength import StrengthMLP

GRID = (8, 8)


def backbone(num_layers=4, seed=0):
    model, tokenizer = tiny_emu3(num_layers=num_layers, seed=seed)
    return ARBackbone.from_model(model, tokenizer)


@pytest.fixture(scope="module")
def tiny():
    return backbone()


@pytest.fixture(scope="module")
def codes(tiny):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, tiny.vocab.codebook_size, (2, GRID[0] * GRID[1]), generator=g)  # X_A, X_B


def prior_vector(y=3, x=5, sigma=1.2):
    ii, jj = np.mgrid[0 : GRID[0], 0 : GRID[1]]
    return torch.from_numpy(np.exp(-((ii - y) ** 2 + (jj - x) ** 2) / (2 * sigma**2)).reshape(-1).astype(np.float32))


def row(tiny, codes, text="right lower lobe opacity increased"):
    ids, layout = teacher_forcing_row(tiny.vocab, tiny.encode_text, codes[0], codes[1], text, GRID)
    return ids, layout


def state_for(tiny, ids, layout, strength, layers, capture=()):
    batch = make_batch([ids], [layout], tiny.vocab.pad)
    return ARGBCAState.for_batch(batch, ids.numel(), tiny.num_layers, prior_vector(), strength, layers, capture)


def hidden_states(model, ids, **kwargs):
    with torch.no_grad():
        return model(input_ids=ids[None], output_hidden_states=True, **kwargs).hidden_states


def test_registered_for_the_text_decoder_only(tiny):
    assert tiny.model.config.text_config._attn_implementation == GBCA_ATTENTION
    assert tiny.model.config.vq_config._attn_implementation != GBCA_ATTENTION


def test_zero_strength_equals_stock_attention_on_every_layer(codes):
    stock_model, _ = tiny_emu3(seed=0)  # same weights, transformers' own SDPA attention
    gbca = backbone(seed=0)
    ids, layout = row(gbca, codes)
    every = range(gbca.num_layers)
    stock = hidden_states(stock_model, ids)
    for strength, exact in ((0.0, True), (lambda depth: torch.zeros_like(depth), False)):
        state = state_for(gbca, ids, layout, strength, every, capture=every)
        state.query_mask = torch.ones((1, ids.numel()), dtype=torch.bool)
        ours = hidden_states(gbca.model, ids, gbca=state)
        assert len(ours) == gbca.num_layers + 1
        for layer, (a, b) in enumerate(zip(stock, ours)):
            if exact:  # s = 0: no bias at all, bit-identical to stock SDPA (capture changes nothing)
                assert torch.equal(a, b), f"layer {layer} differs with s = 0"
            else:  # a zero-valued bias tensor through SDPA's float-mask path
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert sorted(state.mass) == list(every)


def test_positive_strength_changes_only_the_biased_layers_onward(tiny, codes):
    ids, layout = row(tiny, codes)
    stock = hidden_states(tiny.model, ids)
    biased = hidden_states(tiny.model, ids, gbca=state_for(tiny, ids, layout, 2.0, {2}))
    for layer in range(3):  # hidden_states[ℓ] is the input of layer ℓ: layers 0, 1 run unbiased
        assert torch.equal(stock[layer], biased[layer])
    assert not torch.allclose(stock[3], biased[3])


class _Module(torch.nn.Module):
    def __init__(self, layer_idx, heads, kv_heads, dim):
        super().__init__()
        self.layer_idx, self.is_causal = layer_idx, True
        self.num_key_value_groups, self.scaling = heads // kv_heads, dim**-0.5


def hand_attention(q, k, v, mask_add):
    """softmax(QKᵀ/√d + mask) V with GQA by repetition: q (B, H, q, D), k/v (B, Hkv, kv, D) → (B, q, H, D)."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    probs = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + mask_add).softmax(-1)
    return (probs @ v).transpose(1, 2), probs


def test_bias_is_added_to_reference_keys_only_and_keeps_causality(tiny, codes):
    ids, layout = row(tiny, codes)
    s, length = 1.7, ids.numel()
    state = state_for(tiny, ids, layout, s, {1})
    bias = state.key_bias(1, 1, length, torch.zeros(1))[0, 0, 0]  # (S,)
    expected = torch.zeros(length)
    expected[layout.a_visual] = s * prior_vector()
    assert torch.equal(bias, expected)  # text, special tokens, eol, X_B: exactly 0
    assert state.key_bias(0, 1, length, torch.zeros(1)) is None  # not a GBCA layer

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, h, length, 8, generator=g) for h in (4, 2, 2))
    causal = torch.full((length, length), float("-inf")).triu(1)
    out, _ = gbca_attention(_Module(1, 4, 2, 8), q, k, v, None, gbca=state, scaling=8**-0.5, dropout=0.0)
    want, probs = hand_attention(q, k, v, causal + bias)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    _, stock_probs = hand_attention(q, k, v, causal)
    # per query, log p_biased − log p_stock = const on every non-X_A key and const + s·r on X_A keys
    query = length - 1
    ratio = (probs[0, :, query].log() - stock_probs[0, :, query].log())  # (H, S)
    others = torch.ones(length, dtype=torch.bool)
    others[layout.a_visual] = False
    shift = ratio[:, others]
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-4, rtol=0)
    torch.testing.assert_close(ratio[:, layout.a_visual] - shift[:, :1], (s * prior_vector()).expand(4, -1), atol=1e-4, rtol=0)
    assert torch.all(probs[0, :, 0, 1:] == 0)  # causality: the first query sees only itself


def test_causality_intact_with_gbca(tiny, codes):
    ids, layout = row(tiny, codes)
    n = 20  # change X_B[n]
    position = int(layout.b_visual[n])
    changed = ids.clone()
    changed[position] = tiny.vocab.visual[(codes[1, n] + 1) % tiny.vocab.codebook_size]
    state = state_for(tiny, ids, layout, 3.0, range(tiny.num_layers))
    with torch.no_grad():
        a = tiny.model(input_ids=ids[None], gbca=state).logits[0]
        b = tiny.model(input_ids=changed[None], gbca=state).logits[0]
    torch.testing.assert_close(a[:position], b[:position], atol=1e-6, rtol=0)
    assert not torch.allclose(a[position:], b[position:])


def test_bias_follows_left_padding(tiny, codes):
    """Each row's prior sits on its own X_A columns after left padding; the pad columns get nothing."""
    long, long_layout = build_prefix(tiny.vocab, tiny.encode_text, codes[0], "a much longer progression text here", GRID)
    short, short_layout = build_prefix(tiny.vocab, tiny.encode_text, codes[0], "short", GRID)
    batch = make_batch([long, short], [long_layout, short_layout], tiny.vocab.pad)
    rows = key_prior(prior_vector(), batch.layouts, batch.offsets, batch.ids.shape[1])
    offset = batch.offsets[1]
    assert offset == long.numel() - short.numel() > 0
    assert torch.equal(rows[1, offset + short_layout.a_visual], prior_vector())
    assert rows[1, :offset].abs().sum() == 0 and rows[1].sum() == pytest.approx(float(prior_vector().sum()))
    assert torch.all(batch.ids[1, batch.layouts[1].a_visual + offset] == batch.ids[0, batch.layouts[0].a_visual])


def test_capture_equals_hand_computation_on_a_two_layer_model(codes):
    tiny2 = backbone(num_layers=2, seed=5)
    ids, layout = row(tiny2, codes)
    s, biased = 1.3, {1}
    state = teacher_forcing_attention(tiny2, codes[0], codes[1], "right lower lobe opacity increased", GRID,
                                      prior_vector(), s, biased, {0, 1})
    captured = {a.layer: a for a in layer_attention(state, GRID, [], TINY_AR_SIDE, 0.1)}

    hidden = hidden_states(tiny2.model, ids, gbca=state_for(tiny2, ids, layout, s, biased))
    text_model = tiny2.model.model.text_model
    positions = torch.arange(ids.numel())[None]
    cos, sin = text_model.rotary_emb(hidden[0], positions)
    length = ids.numel()
    queries = layout.b_visual - 1  # the positions that predict X_B's visual tokens
    for layer in (0, 1):
        block = text_model.layers[layer]
        x = block.input_layernorm(hidden[layer])
        attn = block.self_attn
        q = attn.q_proj(x).view(1, length, -1, attn.head_dim).transpose(1, 2)
        k = attn.k_proj(x).view(1, length, -1, attn.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        mask = torch.full((length, length), float("-inf")).triu(1)
        if layer in biased:
            bias = torch.zeros(length)
            bias[layout.a_visual] = s * prior_vector()
            mask = mask + bias
        k = k.repeat_interleave(attn.num_key_value_groups, 1)
        probs = (q @ k.transpose(-1, -2) * attn.scaling + mask).softmax(-1)[0]  # (H, S, S)
        mean = probs[:, queries].mean(dim=(0, 1))  # (S,) eq. 4.3 with probabilities
        image = mean[layout.a_visual]
        expected = (image / image.sum()).reshape(GRID).detach().numpy()
        np.testing.assert_allclose(captured[layer].heatmap, expected, atol=1e-5)
        text_share = float(mean[layout.text[0] : layout.text[1]].sum().detach())
        assert captured[layer].text_mass == pytest.approx(text_share, abs=1e-5)


def test_profile_maps_sum_to_one_and_gbca_moves_mass_to_the_prior(tiny, codes):
    off = teacher_forcing_attention(tiny, codes[0], codes[1], "new opacity", GRID, prior_vector(), 0.0, {1, 2}, range(4))
    on = teacher_forcing_attention(tiny, codes[0], codes[1], "new opacity", GRID, prior_vector(), 4.0, {1, 2}, range(4))
    maps_off = layer_attention(off, GRID, [], TINY_AR_SIDE, 0.1)
    maps_on = layer_attention(on, GRID, [], TINY_AR_SIDE, 0.1)
    assert [a.layer for a in maps_off] == [0, 1, 2, 3]
    for a in maps_off + maps_on:
        assert a.heatmap.shape == GRID and a.heatmap.min() >= 0
        assert a.heatmap.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0 <= a.cbi <= 1 and 0 <= a.ear <= 1 and 0 < a.text_mass < 1
    weight = prior_vector().reshape(GRID).numpy()
    assert (maps_on[1].heatmap * weight).sum() > (maps_off[1].heatmap * weight).sum() + 0.05
    np.testing.assert_allclose(maps_on[0].heatmap, maps_off[0].heatmap, atol=1e-6)  # layer 0 runs before the bias


def test_strength_mlp_gives_each_layer_the_init_value_and_stays_bounded(tiny, codes):
    ids, layout = row(tiny, codes)
    mlp = StrengthMLP()
    state = state_for(tiny, ids, layout, lambda depth: mlp(depth), {1, 2})
    assert state.strengths() == {1: pytest.approx(0.01, abs=1e-6), 2: pytest.approx(0.01, abs=1e-6)}
    with torch.no_grad():
        mlp.fc2.bias.fill_(1e4)
        state = state_for(tiny, ids, layout, lambda depth: mlp(depth), {1})
        assert 0 < state.strengths()[1] <= mlp.s_max


@pytest.mark.parametrize("layers", [(4,), (-1,), (1.5,)])
def test_bad_layers_raise(tiny, codes, layers):
    ids, layout = row(tiny, codes)
    with pytest.raises(ValueError, match="layers"):
        state_for(tiny, ids, layout, 1.0, layers)
    with pytest.raises(ValueError, match="outside|whole"):
        check_layers("GBCA layers", layers, 4)


def test_empty_text_and_negative_strength_raise(tiny, codes):
    with pytest.raises(ValueError, match="empty"):
        build_prefix(tiny.vocab, tiny.encode_text, codes[0], "   ", GRID)
    ids, layout = row(tiny, codes)
    with pytest.raises(ValueError, match="≥ 0"):
        state_for(tiny, ids, layout, -1.0, {1})
