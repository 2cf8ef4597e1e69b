"""`train ar` on a tiny random Emu3 (CPU): LoRA r=32/α=64/dropout 0.05 on q/k/v/o only, loss on X_B only, the
thesis optimiser settings, LoRA save/load round trip, GBCA-MLP-only phase, and the CLI's errors."""
import json

import pytest
import torch
import torch.nn.functional as F

from legend_demo.ar.backbone import ARBackbone
from legend_demo.ar.lora import add_lora, load_lora, save_lora
from legend_demo.ar.tiny import TINY_AR_SIDE, save_tiny_emu3, tiny_emu3, write_tiny_pairs
from legend_demo.cli import main
from legend_demo.engines.ar import LeGendAREngine
from legend_demo.method.strength import StrengthMLP
from legend_demo.training.ar import (
    ARTrainOptions, ar_optimizer, encode_pairs, lora_schedule, train_ar, x_b_loss, x_b_targets,
)
from legend_demo.training.data import load_pairs

pytestmark = pytest.mark.slow  # trains: the slow tier (python -m pytest -m slow)


def tiny(seed=0):
    model, tokenizer = tiny_emu3(seed=seed)
    return ARBackbone.from_model(model, tokenizer)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    return write_tiny_pairs(tmp_path_factory.mktemp("ar-pairs") / "pairs", count=5, side=32, val=2)


@pytest.fixture(scope="module")
def train_pairs(pairs_dir):
    return load_pairs(pairs_dir, "train", TINY_AR_SIDE)


def test_lora_targets_only_the_decoder_attention_projections():
    backbone = tiny()
    params = add_lora(backbone.model)
    names = [n for n, p in backbone.model.named_parameters() if p.requires_grad]
    assert len(params) == len(names) == 4 * 4 * 2  # 4 layers × q/k/v/o × (A, B)
    assert all("text_model.layers" in n and "self_attn" in n for n in names)
    assert not any("vqmodel" in n for n in names)
    config = backbone.model._legend_lora
    assert (config.r, config.lora_alpha, config.lora_dropout) == (32, 64, 0.05)
    a = backbone.model.model.text_model.layers[0].self_attn.q_proj.lora_A["default"].weight
    assert a.shape[0] == 32 and a.dtype == torch.float32


def test_loss_is_the_cross_entropy_of_the_follow_up_tokens_only(train_pairs):
    backbone = tiny()
    example = encode_pairs(backbone, train_pairs, 0.1)[0]
    loss = x_b_loss(backbone, example, 0.0, {1})
    with torch.no_grad():
        logits = backbone.model(input_ids=example.ids[None]).logits[0]  # (S, V), stock attention at s = 0
    targets = x_b_targets(example.layout)
    assert targets[0] == example.layout.b_start and targets.numel() == 8 * 9  # X_B: 8 rows of 8 visual + eol
    expected = F.cross_entropy(logits[targets - 1], example.ids[targets])
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert targets.min() > example.layout.text[1] and targets.max() == example.ids.numel() - 1  # nothing before X_B
    target_ids = set(example.ids[targets].tolist())
    assert target_ids <= set(backbone.vocab.visual.tolist()) | {backbone.vocab.eol}


def test_optimiser_and_schedule_follow_the_thesis():
    options = ARTrainOptions()
    optimizer = ar_optimizer([torch.nn.Parameter(torch.zeros(2))], options)
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.95) and group["eps"] == 1e-6 and group["weight_decay"] == 0.1
    assert options.clip == 5.0 and (options.steps, options.batch) == (6000, 16)
    schedule = lora_schedule(options)
    assert schedule.lr_at(0, 0) == pytest.approx(1e-5 / 30)
    assert schedule.lr_at(29, 0) == pytest.approx(1e-5, rel=1e-3)
    assert schedule.lr_at(6000, 0) == pytest.approx(1e-6)


def test_lora_save_load_round_trip(tmp_path):
    trained = tiny(seed=1)
    add_lora(trained.model)
    with torch.no_grad():
        for name, p in trained.model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.2)
    ids = torch.randint(0, 90, (1, 40))
    with torch.no_grad():
        want = trained.model(input_ids=ids).logits
        base = tiny(seed=1).model(input_ids=ids).logits
    assert not torch.allclose(want, base)
    folder = save_lora(trained.model, tmp_path / "lora")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    fresh = tiny(seed=1)
    load_lora(fresh.model, folder)
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(input_ids=ids).logits, want)
    model_folder = save_tiny_emu3(tmp_path / "emu3", seed=1)
    engine = LeGendAREngine.from_pretrained(str(model_folder), lora=str(folder), model_side=TINY_AR_SIDE)
    with torch.no_grad():
        torch.testing.assert_close(engine.backbone.model(input_ids=ids).logits, want)
    with pytest.raises(ValueError, match="already"):
        load_lora(fresh.model, folder)
    with pytest.raises(FileNotFoundError, match="no LoRA adapter"):
        load_lora(tiny().model, tmp_path)


def test_train_ar_lora_then_gbca_mlp_only(tmp_path, pairs_dir, train_pairs):
    backbone = tiny()
    val = load_pairs(pairs_dir, "val", TINY_AR_SIDE)
    options = ARTrainOptions(steps=3, batch=2, warmup=1, gbca_steps=3, log_every=1, checkpoint_every=2)
    mlp = StrengthMLP()
    before = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}
    summary = train_ar(backbone, train_pairs, tmp_path, (1, 2), options, mlp, val)
    assert summary["lora"]["steps"] == 3 and summary["gbca"]["steps"] == 3
    assert summary["gbca"]["strength_per_layer"] != {1: 0.01, 2: 0.01}  # the MLP moved
    changed = [n for n, p in backbone.model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert changed == []  # only LoRA parameters (new) and the MLP were trained
    lora_names = [n for n, _ in backbone.model.named_parameters() if "lora_" in n]
    assert lora_names
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ar_gbca.json", "gbca_strength.safetensors", "lora", "train_log.jsonl", "train_state.json"]
    assert json.loads((tmp_path / "ar_gbca.json").read_text())["gbca_layers"] == [1, 2]
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert {r.get("phase") for r in log if "step" in r} == {"lora", "gbca"}
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)
    # the GBCA phase froze the LoRA: loading the published adapter gives the trained model's logits
    fresh = tiny()
    load_lora(fresh.model, tmp_path / "lora")
    ids = torch.randint(0, 90, (1, 30))
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(input_ids=ids).logits, backbone.model(input_ids=ids).logits)
    assert StrengthMLP.load(tmp_path / "gbca_strength.safetensors")(torch.tensor([1 / 3])).item() == pytest.approx(
        summary["gbca"]["strength_per_layer"][1], abs=1e-5)


def test_bad_training_options_raise(train_pairs):
    for options, match in ((ARTrainOptions(steps=0, gbca_steps=0), "both 0"), (ARTrainOptions(batch=0), "batch"),
                           (ARTrainOptions(min_lr=1e-4), "min_lr"), (ARTrainOptions(dropout=1.0), "dropout")):
        with pytest.raises(ValueError, match=match):
            train_ar(tiny(), train_pairs, "/nonexistent-not-written", (1,), options)
    with pytest.raises(ValueError, match="GBCA layers"):
        train_ar(tiny(), train_pairs, "/nonexistent-not-written", (7,), ARTrainOptions(steps=1))


@pytest.mark.slow
def test_train_ar_cli(tmp_path, pairs_dir, monkeypatch, capsys):
    model = save_tiny_emu3(tmp_path / "emu3")
    out = tmp_path / "run"
    code = main(["train", "ar", "--emu3", str(model), "--data", str(pairs_dir), "--out", str(out), "--side", "16",
                 "--steps", "2", "--batch", "1", "--gbca-steps", "2", "--device", "cpu", "--vital-layers", "1,2"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["gbca_layers"] == [1, 2] and summary["lora"]["steps"] == 2
    assert (out / "lora" / "adapter_model.safetensors").is_file() and (out / "gbca_strength.safetensors").is_file()
    # GBCA only, on the trained LoRA
    code = main(["train", "ar", "--emu3", str(model), "--data", str(pairs_dir), "--out", str(tmp_path / "g"),
                 "--side", "16", "--init", str(out / "lora"), "--gbca-steps", "2", "--batch", "1", "--device", "cpu"])
    assert code == 0 and "lora" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("argv, message", [
    (["--steps", "1"], "needs --emu3"),
    (["--emu3", "x", "--model", "flux", "--flux", "y"], "--model/--flux"),
    (["--emu3", "x", "--init", "lora", "--steps", "3"], "only the GBCA MLP"),
    (["--emu3", "x", "--gbca-steps", "-1"], "--gbca-steps"),
])
def test_train_ar_cli_errors(tmp_path, pairs_dir, monkeypatch, capsys, argv, message):
    monkeypatch.delenv("LEGEND_EMU3_PATH", raising=False)
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path))
    code = main(["train", "ar", "--data", str(pairs_dir), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_gbca_steps_only_for_ar(tmp_path, pairs_dir, capsys):
    code = main(["train", "stage2", "--data", str(pairs_dir), "--out", str(tmp_path), "--gbca-steps", "3"])
    assert code == 2 and "only used by train ar" in capsys.readouterr().err
