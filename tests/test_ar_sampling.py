"""KV-cached sampling of X̂_B on a tiny random Emu3: cached decoding equals uncached decoding (with GBCA, batched
CFG and left padding), determinism by seed, keep-region tokens, row progress and cancel, option errors."""
import pytest
import torch

from legend_demo.ar.attention import ARGBCAState
from legend_demo.ar.backbone import ARBackbone
from legend_demo.ar.sampling import SamplingOptions, sample_follow_up
from legend_demo.ar.sequence import build_prefix, make_batch, position_ids
from legend_demo.ar.tiny import tiny_emu3

pytestmark = pytest.mark.slow  # decodes images autoregressively: the slow tier (python -m pytest -m slow)

GRID = (8, 8)
TEXT, UNCOND = "interval increase of right effusion", "a chest radiograph"


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_emu3(seed=2)
    return ARBackbone.from_model(model, tokenizer)


@pytest.fixture(scope="module")
def reference(tiny):
    return torch.randint(0, tiny.vocab.codebook_size, (GRID[0] * GRID[1],), generator=torch.Generator().manual_seed(7))


def prior():
    r = torch.zeros(GRID)
    r[2:5, 3:6] = 1.0
    return r.reshape(-1)


def rows(tiny, reference, guided=True):
    texts = [TEXT, UNCOND] if guided else [TEXT]
    prefixes, layouts = zip(*(build_prefix(tiny.vocab, tiny.encode_text, reference, t, GRID) for t in texts))
    return make_batch(list(prefixes), list(layouts), tiny.vocab.pad)


def state(tiny, batch, strength=2.5):
    length = batch.ids.shape[1] + batch.layouts[0].b_length
    return ARGBCAState.for_batch(batch, length, tiny.num_layers, prior(), strength, {1, 2}, {1, 2})


def sample(tiny, reference, seed=0, options=SamplingOptions(top_k=2048), guided=True, **kwargs):
    batch = rows(tiny, reference, guided)
    with torch.no_grad():
        return sample_follow_up(tiny, batch, state(tiny, batch), options, seed, reference, **kwargs)


@torch.no_grad()
def greedy_without_cache(tiny, reference, guidance):
    """The same decoding with a full forward over the whole sequence at every step (no KV cache)."""
    batch = rows(tiny, reference, guided=True)
    st = state(tiny, batch)
    ids, mask = batch.ids.clone(), batch.attention_mask.clone()
    visual = tiny.vocab.visual
    h, w = GRID
    codes = []
    for t in range(h * (w + 1)):
        if t % (w + 1) == w:
            token = tiny.vocab.eol
        else:
            logits, _ = tiny.forward(ids, mask, position_ids(mask), state=st)
            scores = logits[:, -1].float().log_softmax(-1)  # (2, V)
            guided = scores[1] + guidance * (scores[0] - scores[1])
            code = int(guided[visual].argmax())
            codes.append(code)
            token = int(visual[code])
        ids = torch.cat([ids, torch.full((2, 1), token)], dim=1)
        mask = torch.cat([mask, torch.ones((2, 1), dtype=mask.dtype)], dim=1)
    return torch.tensor(codes)


def test_cached_decoding_equals_uncached_with_gbca_cfg_and_padding(tiny, reference):
    batch = rows(tiny, reference)
    assert batch.offsets[1] > 0  # the unconditional row really is left-padded
    out = sample(tiny, reference, options=SamplingOptions(guidance_scale=3.0, top_k=1))
    assert torch.equal(out.codes, greedy_without_cache(tiny, reference, 3.0))
    assert out.tokens == GRID[0] * (GRID[1] + 1) and not out.kept.any()


def test_generation_is_deterministic_by_seed(tiny, reference):
    a, b, c = (sample(tiny, reference, seed=s).codes for s in (11, 11, 12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (64,) and a.min() >= 0 and a.max() < tiny.vocab.codebook_size


def test_unguided_sampling_uses_one_row(tiny, reference):
    out = sample(tiny, reference, options=SamplingOptions(guidance_scale=1.0), guided=False)
    assert out.codes.shape == (64,)
    with pytest.raises(ValueError, match="row"):
        sample(tiny, reference, options=SamplingOptions(guidance_scale=1.0), guided=True)


def test_keep_region_emits_reference_tokens(tiny, reference):
    keep = torch.zeros(64, dtype=torch.bool)
    keep[:40] = True
    out = sample(tiny, reference, seed=3, keep=keep)
    assert torch.equal(out.kept, keep)
    assert torch.equal(out.codes[keep], reference[keep])
    everything = sample(tiny, reference, seed=3, keep=torch.ones(64, dtype=torch.bool))
    assert torch.equal(everything.codes, reference)


def test_progress_per_row_and_cancel(tiny, reference):
    seen = []
    sample(tiny, reference, on_row=lambda row, rows: seen.append((row, rows)))
    assert seen == [(r, GRID[0]) for r in range(1, GRID[0] + 1)]

    class Stop(RuntimeError):
        pass

    def stop_after_two(row, rows):
        if row == 2:
            raise Stop

    with pytest.raises(Stop):
        sample(tiny, reference, on_row=stop_after_two)


@pytest.mark.parametrize("options, match", [
    (SamplingOptions(guidance_scale=0.5), "guidance_scale"),
    (SamplingOptions(top_k=0), "top_k"),
    (SamplingOptions(top_p=0.0), "top_p"),
    (SamplingOptions(temperature=0.0), "temperature"),
])
def test_bad_sampling_options_raise(tiny, reference, options, match):
    with pytest.raises(ValueError, match=match):
        sample(tiny, reference, options=options)
