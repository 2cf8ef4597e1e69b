"""Training and vitality on tiny models (CPU): stage-1 flow matching (embedded, FLUX LoRA), stage 2 trains only
s(τ), vitality bypass and selection, and the `train` CLI."""
import copy
import json

import cv2
import numpy as np
import pytest
import torch

from legend_demo.cli import main
from legend_demo.embedded.model import EmbeddedConfig, MiniLMTextEncoder, load_model
from legend_demo.training.backbone import embedded_backbone, flux_backbone
from legend_demo.training.data import load_pairs
from legend_demo.training.loop import Schedule
from legend_demo.training.stage1 import Stage1Options, _validation_batch, train_stage1, validation_loss
from legend_demo.training.stage2 import Stage2Options, edit_loss, edit_pair, train_stage2
from legend_demo.training.vitality import VitalityOptions, blocks, bypassed, select_vital, vitality_scores

pytestmark = pytest.mark.slow  # trains: the slow tier (python -m pytest -m slow)

SMALL = dict(side=32, space_to_depth=2, num_layers=1, num_single_layers=1, attention_head_dim=16,
             num_attention_heads=2, axes_dims_rope=(4, 6, 6))
IMAGE_SIDE = 64


def write_pair(root, index, split, rng):
    pid = f"pair-{index}"
    folder = root / pid
    folder.mkdir(parents=True)
    ref = cv2.GaussianBlur(rng.random((IMAGE_SIDE, IMAGE_SIDE)).astype(np.float32), (0, 0), 4)
    ref = (ref - ref.min()) / (ref.max() - ref.min()) * 0.6 + 0.2
    x, y = int(rng.integers(16, 48)), int(rng.integers(16, 48))
    mask = np.zeros_like(ref)
    cv2.circle(mask, (x, y), 8, 1.0, -1)
    flu = np.clip(ref + 0.3 * mask, 0, 1)
    for name, image in (("ref", ref), ("flu", flu), ("mask", mask)):
        cv2.imwrite(str(folder / f"{pid}-{name}.png"), np.round(image * 255).astype(np.uint8))
    record = {"source-description": f"Chest radiograph {index}.", "progression-description": f"New opacity {index}.",
              "lesion_points": [{"x": x, "y": y, "confidence": 5}], "split": split}
    (folder / f"{pid}.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(0)
    for i, split in enumerate(["train"] * 4 + ["val"] * 2):
        write_pair(root, i, split, rng)
    return root


@pytest.fixture(scope="module")
def text_encoder():
    return MiniLMTextEncoder()


@pytest.fixture()
def small_model(text_encoder):
    return embedded_backbone(config=EmbeddedConfig(**SMALL), seed=0, text_encoder=text_encoder)


def test_pairs_load_by_split_resized_with_points_in_model_pixels(data_dir):
    train = load_pairs(data_dir, "train", 32)
    assert len(train) == 4 and len(load_pairs(data_dir, "val", 32)) == 2
    assert train.reference.shape == train.follow_up.shape == train.mask.shape == (4, 32, 32)
    assert 0 <= float(train.reference.min()) and float(train.follow_up.max()) <= 1
    record = json.loads((data_dir / "pair-0" / "pair-0.json").read_text())
    point = train.points[0][0]
    assert (point.x, point.y) == (record["lesion_points"][0]["x"] / 2, record["lesion_points"][0]["y"] / 2)
    # INTER_AREA: each model pixel is the mean of its 2×2 source block
    source = cv2.imread(str(data_dir / "pair-0" / "pair-0-ref.png"), cv2.IMREAD_UNCHANGED) / 255.0
    assert np.allclose(train.reference[0].numpy(), source.reshape(32, 2, 32, 2).mean(axis=(1, 3)), atol=1e-5)
    assert train.source_texts[0] == record["source-description"]
    with pytest.raises(ValueError, match="no pairs with split='test'"):
        load_pairs(data_dir, "test", 32)
    with pytest.raises(FileNotFoundError):
        load_pairs(data_dir / "missing", "train", 32)


def test_schedule_warms_up_decays_and_respects_the_time_budget():
    s = Schedule(lr=1.0, steps=100, warmup=10, budget_s=60.0, min_ratio=0.1)
    assert s.lr_at(0, 0) == pytest.approx(0.1)  # warm-up
    assert s.lr_at(9, 0) == pytest.approx(0.1 + 0.45 * (1 + np.cos(np.pi * 0.09)))  # warm, cosine at 9 %
    assert s.lr_at(50, 0) == pytest.approx(0.55)  # half-way by steps
    assert s.lr_at(10, 30) == pytest.approx(0.55)  # half-way by time: the further one wins
    assert s.lr_at(99, 60) == pytest.approx(0.1)
    assert not s.done(99, 59) and s.done(100, 0) and s.done(3, 60)
    with pytest.raises(ValueError, match="learning rate"):
        Schedule(lr=0.0, steps=10)


def test_stage1_embedded_loss_decreases_and_checkpoints_load(small_model, data_dir, tmp_path):
    data = load_pairs(data_dir, "train", 32, limit=2)  # 4 items = one fixed batch
    options = Stage1Options(steps=24, batch=4, lr=2e-3, warmup=2, checkpoint_every=8, log_every=4)
    fixed = _validation_batch(data, options, small_model)
    before = validation_loss(small_model, fixed)
    summary = train_stage1(small_model, data, tmp_path, options, val=data)
    assert summary["steps"] == 24
    assert summary["val_loss"] < 0.9 * before  # same images, same noise and t: the fit improved
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("event") == "checkpoint"] == [8, 16, 24]
    assert json.loads((tmp_path / "train_state.json").read_text())["finished"] is True
    transformer, config, strength = load_model(tmp_path)
    assert config == small_model.config and strength is None
    assert not (tmp_path / ".partial").exists()


def tiny_pipe():
    from legend_demo.core.tiny import tiny_flux_pipeline

    return tiny_flux_pipeline(num_layers=1, num_single_layers=1, seed=0)


def transformer_output(transformer, seed=0):
    from legend_demo.method.codecs import image_ids

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return transformer(hidden_states=torch.randn(1, 256, 4, generator=g), encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
                           pooled_projections=torch.randn(1, 32, generator=g), timestep=torch.tensor([0.5]),
                           img_ids=image_ids((16, 16), "cpu", torch.float32),
                           txt_ids=torch.zeros(8, 3), guidance=torch.tensor([3.5]), return_dict=False)[0]


def test_stage1_flux_lora_targets_frozen_base_and_loadable_file(data_dir, tmp_path):
    from legend_demo.core.tiny import TINY_SIDE

    pipe = tiny_pipe()
    base_weights = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    base_out = transformer_output(pipe.transformer)
    backbone = flux_backbone(pipe, side=TINY_SIDE, device="cpu")
    data = load_pairs(data_dir, "train", TINY_SIDE, limit=2)
    train_stage1(backbone, data, tmp_path, Stage1Options(steps=6, batch=4, lr=1e-2, warmup=0, checkpoint_every=3))

    transformer = pipe.transformer
    config = transformer.peft_config["default"]
    assert (config.r, config.lora_alpha) == (16, 32)
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in transformer.named_modules() if n.endswith("lora_A")}
    double = {"to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"}
    assert adapted == {f"transformer_blocks.0.attn.{m}" for m in double} | {
        f"single_transformer_blocks.0.attn.{m}" for m in ("to_q", "to_k", "to_v")}
    for name, value in transformer.state_dict().items():  # base weights untouched (peft renames them base_layer)
        if "lora_" not in name:
            assert torch.equal(value, base_weights[name.replace(".base_layer", "")]), name
    trained_out = transformer_output(transformer)

    fresh = tiny_pipe()
    fresh.load_lora_weights(str(tmp_path))
    loaded_out = transformer_output(fresh.transformer)
    assert not torch.allclose(loaded_out, base_out, atol=1e-4)  # the LoRA changes the output …
    assert torch.allclose(loaded_out, trained_out, atol=1e-5)  # … exactly as trained (α = 32 survived the file)


def test_stage2_trains_only_the_strength_mlp(small_model, data_dir, tmp_path):
    from legend_demo.method.strength import StrengthMLP

    data = load_pairs(data_dir, "train", 32)
    before = {k: v.clone() for k, v in small_model.transformer.state_dict().items()}
    mlp = StrengthMLP()
    init = {k: v.clone() for k, v in mlp.state_dict().items()}
    options = Stage2Options(steps=3, batch=2, checkpoint_every=3, log_every=1)
    summary = train_stage2(small_model, data, tmp_path, (0, 1), options, strength=mlp)
    assert summary["steps"] == 3
    after = small_model.transformer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # backbone bit-identical
    assert any(not torch.equal(init[k], v) for k, v in mlp.state_dict().items())
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 0 for r in log if "grad_norm" in r)
    _, config, saved = load_model(tmp_path)
    assert config.vital_layers == (0, 1)
    assert torch.equal(saved.fc2.bias, mlp.fc2.bias.detach())

    # the gradient reaches s(τ) through the key bias, and nothing else in the frozen backbone
    mlp.zero_grad()
    loss = edit_loss(small_model, edit_pair(small_model, data, 0, options), frozenset({0}), mlp, torch.Generator().manual_seed(0))
    loss.backward()
    assert float(mlp.fc2.bias.grad.abs()) > 0 and torch.isfinite(mlp.fc2.weight.grad).all()
    assert all(p.grad is None for p in small_model.transformer.parameters())


def test_bypass_equals_removing_the_block_and_changes_the_output():
    from legend_demo.core.tiny import tiny_transformer

    transformer = tiny_transformer(num_layers=2, num_single_layers=2, seed=1)
    full = transformer_output(transformer)
    for layer in range(4):
        pruned = copy.deepcopy(transformer)
        group = pruned.transformer_blocks if layer < 2 else pruned.single_transformer_blocks
        del group[layer % 2]
        with bypassed(transformer, layer):
            skipped = transformer_output(transformer)
        assert torch.allclose(skipped, transformer_output(pruned), atol=1e-6)
        assert not torch.allclose(skipped, full, atol=1e-4)
    assert torch.equal(transformer_output(transformer), full)  # hook removed
    assert len(blocks(transformer)) == 4
    with pytest.raises(ValueError, match="layer 4 outside"):
        with bypassed(transformer, 4):
            pass


def test_vitality_scores_every_layer_in_range(small_model):
    result = vitality_scores(small_model, ["Chest radiograph.", "New opacity."], VitalityOptions(samples=2, steps=3, tau=None, top_k=1))
    scores = {int(k): v for k, v in result["scores"].items()}
    assert sorted(scores) == [0, 1]
    assert all(0.0 <= v <= 2.0 for v in scores.values())
    assert max(scores.values()) > 0  # skipping a block changes the generated image
    assert result["selected"] == [max(scores, key=scores.get)]


def test_select_vital_rule():
    scores = {0: 0.30, 1: 0.05, 2: 0.12, 3: 0.40}
    assert select_vital(scores, tau=0.1) == [0, 2, 3]  # eq. 5.3
    assert select_vital(scores, top_k=2) == [0, 3]
    assert select_vital(scores, tau=0.2, top_k=5) == [0, 3]
    with pytest.raises(ValueError, match="highest v\\(l\\) = 0.4000"):
        select_vital(scores, tau=0.5)


@pytest.mark.parametrize("argv, message", [
    (["stage1", "--data", "{missing}", "--out", "{out}"], "--data folder not found"),
    (["stage2", "--data", "{data}", "--out", "{out}"], "needs --init"),
    (["vitality", "--data", "{data}", "--out", "{out}", "--init", "x", "--tau", "0.1", "--top-k", "2"], "not both"),
    (["stage1", "--data", "{data}", "--out", "{out}", "--steps", "0"], "--steps must be ≥ 1"),
    (["stage1", "--data", "{data}", "--out", "{out}", "--model", "flux"], "needs --flux"),
    (["stage2", "--data", "{data}", "--out", "{out}", "--init", "{missing}"], "not an embedded model folder"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, message, data_dir, tmp_path, capsys):
    subs = {"{data}": str(data_dir), "{out}": str(tmp_path / "out"), "{missing}": str(tmp_path / "missing")}
    code = main(["train", *[subs.get(a, a) for a in argv]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_cli_chain_stage1_vitality_stage2(data_dir, tmp_path, capsys):
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    common = ["--data", str(data_dir), "--threads", "1"]
    s1, vit, s2 = tmp_path / "s1", tmp_path / "vit", tmp_path / "s2"
    assert main(["train", "stage1", *common, "--out", str(s1), "--config", str(config), "--steps", "2", "--batch", "2"]) == 0
    assert main(["train", "vitality", *common, "--out", str(vit), "--init", str(s1), "--samples", "2",
                 "--sample-steps", "2", "--top-k", "1"]) == 0
    selected = json.loads((vit / "vitality.json").read_text())["selected"]
    assert len(selected) == 1 and load_model(vit)[1].vital_layers == tuple(selected)
    assert main(["train", "stage2", *common, "--out", str(s2), "--init", str(vit), "--steps", "1", "--batch", "1"]) == 0
    _, config2, strength = load_model(s2)
    assert config2.vital_layers == tuple(selected) and strength is not None
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stage"] == "stage2"


@pytest.mark.slow
def test_paired_training_is_resumable_and_stage2_trains_only_strength_and_vital_projections(small_model, data_dir, tmp_path):
    """The reference-conditioned embedded recipe: pairs (all weights, resumable), then s(τ) + vital projections."""
    from legend_demo.embedded.model import build_editor
    from legend_demo.training.backbone import Backbone
    from legend_demo.training.paired import (PairedOptions, StrengthOptions, reference_conditioned, train_paired,
                                             train_strength, vital_projections)

    model, config = reference_conditioned(small_model.config, small_model.transformer, refine_channels=4)
    backbone = Backbone(editor=build_editor(model, small_model.editor.encode_text, config), kind="embedded", config=config)
    with torch.no_grad():  # prior columns start at zero: the copy's velocity equals the plain model's
        x = torch.randn(1, 64, 16)
        t, (embeds, pooled) = torch.tensor([0.5]), backbone.encode_text(["x"])
        torch.testing.assert_close(backbone.velocity(x, t, embeds, pooled, reference=torch.randn(1, 64, 16)),
                                   small_model.velocity(x, t, embeds, pooled), atol=1e-5, rtol=1e-5)
    train, val = load_pairs(data_dir, "train", 32), load_pairs(data_dir, "val", 32)
    options = PairedOptions(steps=4, batch=2, warmup=1, checkpoint_every=2, log_every=1, val_pairs=2)
    train_paired(backbone, train, tmp_path / "pairs", (0,), options, val)
    assert json.loads((tmp_path / "pairs" / "train_state.json").read_text())["step"] == 4
    loaded, saved_config, _ = load_model(tmp_path / "pairs" / "model")
    assert saved_config.reference_channels and saved_config.vital_layers == (0,)
    resumed = train_paired(backbone, train, tmp_path / "pairs", (0,), replace_steps(options, 6), val)
    assert resumed["steps"] == 6  # continued from step 4, not from 0

    frozen = {n: p.detach().clone() for n, p in backbone.transformer.named_parameters()}
    trainable = {id(p) for p in vital_projections(backbone, frozenset({0}))}
    result = train_strength(backbone, train, tmp_path / "gbca", (0,), StrengthOptions(steps=3, batch=2, checkpoint_every=3,
                                                                                     log_every=1, val_pairs=2), val)
    assert result["strength"]["tau=0.5"] != pytest.approx(0.01, abs=1e-6)  # s(τ) moved from its init
    for name, param in backbone.transformer.named_parameters():
        moved = not torch.equal(param, frozen[name])
        assert moved <= (id(param) in trainable), name  # only vital-layer projections may change
    _, _, strength = load_model(tmp_path / "gbca" / "model")
    assert strength is not None


def replace_steps(options, steps):
    from dataclasses import replace

    return replace(options, steps=steps)
