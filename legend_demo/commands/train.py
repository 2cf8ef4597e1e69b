"""`python -m legend_demo train stage1|vitality|pairs|stage2|ar --data DIR --out DIR`: train LeGend-Diffusion
(thesis §5.3.1) or the autoregressive LeGend (thesis §4.3.3).

stage1: flow matching on single radiographs (embedded: full weights; --model flux: LoRA r=16, α=32);
vitality: v(l) per block and the vital set (§5.2.1), written to OUT/vitality.json (embedded: plus a model folder
with config.json's vital_layers set); pairs: the embedded model made reference-conditioned (the prior as extra input
channels, a convolutional refinement head) and trained on pairs in the dual path with vital-layer injection and the
Gaussian bias (all weights; resumable from OUT/resume.pt); stage2: only the GBCA strength MLP s(τ) with vital-layer
injection; ar: the autoregressive LeGend on Emu3 (--emu3, default LEGEND_EMU3_PATH / checkpoints/emu3-gen/): a LoRA
r=32, α=64 on the decoder's q/k/v/o with the loss on the follow-up tokens only, then only the GBCA strength MLP
(--gbca-steps; with --init LORA_DIR only the GBCA MLP trains, on that LoRA); see legend_demo/training/ar.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from ..method.layer_spec import parse_layers

STAGES = ("stage1", "vitality", "pairs", "stage2", "ar")
DEFAULTS = {  # (stage, model) → steps, batch, lr; see legend_demo/training/stage2.py for the stage-2 lr
    ("stage1", "embedded"): (2000, 16, 3e-4),
    ("stage1", "flux"): (2000, 16, 1e-4),
    ("pairs", "embedded"): (20000, 8, 3e-4),
    ("stage2", "embedded"): (200, 8, 1e-2),
    ("stage2", "flux"): (200, 32, 1e-5),  # thesis: AdamW lr 1e-5, wd 0.01, global batch 32
    ("ar", "emu3"): (6000, 16, 1e-5),  # thesis §4.3.3: 6k steps, batch 16, lr 1e-5 cosine to 1e-6
}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the model (stage 1, vitality analysis, stage 2)", description=__doc__)
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--data", required=True, help="synthetic pair folders (python -m legend_demo synth)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", choices=("embedded", "flux"), default="embedded")
    p.add_argument("--flux", default=None, help="FluxPipeline folder (FLUX.1-dev) for --model flux")
    p.add_argument("--init", default=None, help="embedded: model folder of the previous stage; flux: stage-1 LoRA folder")
    p.add_argument("--config", default=None, help="stage1 embedded without --init: EmbeddedConfig JSON (default config)")
    p.add_argument("--side", type=int, default=256, help="--model flux and ar: model side in pixels (default 256)")
    p.add_argument("--split", default="train", help="data split to train on (default train)")
    p.add_argument("--val-split", default="val", help="split for the validation loss, or 'none' (default val)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many pairs (quick runs)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (stage1 2000, stage2 200)")
    p.add_argument("--batch", type=int, default=None, help="stage1: images per step (16); stage2: pairs per step (8)")
    p.add_argument("--lr", type=float, default=None, help="stage1 3e-4 (flux LoRA 1e-4); stage2 1e-2 (flux 1e-5)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (stage1/pairs 100, ar 30)")
    p.add_argument("--ema", type=float, default=0.999, help="stage1 embedded EMA decay, 0 = off (default 0.999)")
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many minutes (checkpoint kept)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (100; stage2 50)")
    p.add_argument("--lesion-weight", type=float, default=None, help="loss weight 1 + λ·mask (stage2 3, pairs 4)")
    p.add_argument("--location-free-text", action="store_true",
                   help="pairs: train (and run) on texts without side/lobe/zone words, so location comes from the points")
    p.add_argument("--refine-channels", type=int, default=24, help="pairs: width of the refinement head (default 24)")
    p.add_argument("--bias-layers", default=None,
                   help="pairs: layers with the Gaussian key bias, comma list (default: the vital layers)")
    p.add_argument("--vital-layers", default=None, help="stage2: comma list, e.g. 0,1,4 (default: from --init)")
    p.add_argument("--tau", type=float, default=None, help="vitality threshold τ_vit (default 0.1 without --top-k)")
    p.add_argument("--top-k", type=int, default=None, help="vitality: keep the k most vital layers")
    p.add_argument("--samples", type=int, default=8, help="vitality: N generated images (default 8)")
    p.add_argument("--sample-steps", type=int, default=10, help="vitality: sampling steps per image (default 10)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--emu3", default=None, help="ar: Emu3-Gen folder or hub id (default LEGEND_EMU3_PATH, checkpoints/emu3-gen/)")
    p.add_argument("--gbca-steps", type=int, default=None, help="ar: steps of GBCA-MLP-only training after the LoRA, 0 = skip (500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available; embedded: cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    _check_common(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "command.json").write_text(json.dumps({"argv": ["python", "-m", "legend_demo", *sys.argv[1:]]}) + "\n")
    summary = {"stage1": _stage1, "stage2": _stage2, "vitality": _vitality, "pairs": _pairs, "ar": _ar}[args.stage](args)
    print(json.dumps({"stage": args.stage, "out": args.out, **summary}))
    return 0


def _check_common(args: argparse.Namespace) -> None:
    for name in ("steps", "batch", "threads", "limit", "checkpoint_every", "samples", "sample_steps", "top_k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if args.time_budget is not None and not args.time_budget > 0:
        raise ValueError(f"--time-budget must be a positive number of minutes, got {args.time_budget}")
    if args.tau is not None and args.top_k is not None:
        raise ValueError(f"give --tau ({args.tau}) or --top-k ({args.top_k}), not both")
    if args.stage == "ar" and (args.model != "embedded" or args.flux):
        raise ValueError("train ar trains Emu3 (--emu3); --model/--flux do not apply")
    if (args.emu3 or args.gbca_steps is not None) and args.stage != "ar":
        raise ValueError("--emu3 and --gbca-steps are only used by train ar")
    if args.model == "flux" and not args.flux:
        raise ValueError("--model flux needs --flux PATH (a FluxPipeline folder such as FLUX.1-dev)")
    if args.model == "embedded" and args.flux:
        raise ValueError(f"--flux {args.flux} is only used with --model flux")
    if args.config and (args.stage != "stage1" or args.model != "embedded" or args.init):
        raise ValueError(f"--config {args.config} only applies to a new embedded model (stage1 without --init)")
    if args.stage == "pairs" and args.model != "embedded":
        raise ValueError("pairs trains the embedded model only (FLUX keeps its stage-1 LoRA + stage-2 GBCA recipe)")
    if args.stage in ("stage2", "vitality", "pairs") and args.model == "embedded" and not args.init:
        raise ValueError(f"{args.stage} needs --init: the embedded model folder written by the previous stage")
    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data folder not found: {args.data}")


def _backbone(args: argparse.Namespace):
    from ..training.backbone import embedded_backbone, flux_backbone

    if args.model == "flux":
        return flux_backbone(args.flux, side=args.side, lora=args.init, device=args.device)
    if args.device not in (None, "cpu"):
        raise ValueError(f"the embedded model trains on the CPU; --device {args.device} is not supported")
    config = _config(args.config) if args.config else None
    return embedded_backbone(init=args.init, config=config, seed=args.seed)


def _config(path: str):
    """EmbeddedConfig from a JSON object of its fields (missing fields keep their defaults)."""
    from dataclasses import fields

    from ..embedded.model import EmbeddedConfig

    if not Path(path).is_file():
        raise FileNotFoundError(f"--config file not found: {path}")
    data = json.loads(Path(path).read_text())
    known = {f.name for f in fields(EmbeddedConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"--config {path}: unknown EmbeddedConfig fields {unknown}")
    for key in ("axes_dims_rope", "vital_layers"):
        if key in data:
            data[key] = tuple(data[key])
    return EmbeddedConfig(**data)


def _data(args: argparse.Namespace, side: int):
    from ..training.data import load_pairs

    train = load_pairs(args.data, args.split, side, args.limit)
    val = None if args.val_split == "none" else load_pairs(args.data, args.val_split, side, args.limit)
    return train, val


def _warmup(args: argparse.Namespace, default: int) -> int:
    if args.warmup is not None and args.warmup < 0:
        raise ValueError(f"--warmup must be ≥ 0, got {args.warmup}")
    return default if args.warmup is None else args.warmup


def _budget(args: argparse.Namespace) -> float | None:
    return None if args.time_budget is None else args.time_budget * 60.0


def _stage1(args: argparse.Namespace) -> dict:
    from ..training.stage1 import Stage1Options, train_stage1

    if args.model == "flux" and args.init:
        raise ValueError("stage1 --model flux starts a new LoRA; --init is not used")
    steps, batch, lr = DEFAULTS[("stage1", args.model)]
    options = Stage1Options(steps=args.steps or steps, batch=args.batch or batch, lr=args.lr or lr, warmup=_warmup(args, 100),
                            seed=args.seed, time_budget_s=_budget(args), checkpoint_every=args.checkpoint_every or 100,
                            ema_decay=args.ema)
    backbone = _backbone(args)
    train, val = _data(args, backbone.side)
    return train_stage1(backbone, train, args.out, options, val)


def _stage2(args: argparse.Namespace) -> dict:
    from ..training.stage2 import Stage2Options, train_stage2

    backbone = _backbone(args)
    if backbone.kind == "embedded" and backbone.config.reference_channels:
        return _stage2_paired(args, backbone)
    steps, batch, lr = DEFAULTS[("stage2", args.model)]
    options = Stage2Options(steps=args.steps or steps, batch=args.batch or batch, lr=args.lr or lr, seed=args.seed,
                            time_budget_s=_budget(args), checkpoint_every=args.checkpoint_every or 50,
                            lesion_weight=3.0 if args.lesion_weight is None else args.lesion_weight)
    vital = _vital_layers(args, backbone)
    train, val = _data(args, backbone.side)
    return train_stage2(backbone, train, args.out, vital, options, backbone.editor.strength_mlp, val)


def _stage2_paired(args: argparse.Namespace, backbone) -> dict:
    """Stage 2 for a reference-conditioned embedded model: s(τ) + vital-layer projections, paired loss, batched."""
    from ..training.paired import StrengthOptions, train_strength

    options = StrengthOptions(steps=args.steps or 600, batch=args.batch or 8, seed=args.seed,
                              lr_strength=args.lr or 1e-2, time_budget_s=_budget(args),
                              checkpoint_every=args.checkpoint_every or 100,
                              lesion_weight=4.0 if args.lesion_weight is None else args.lesion_weight)
    train, val = _data(args, backbone.side)
    return train_strength(backbone, train, args.out, _vital_layers(args, backbone), options, val)


def _pairs(args: argparse.Namespace) -> dict:
    from ..embedded.model import build_editor
    from ..training.backbone import Backbone
    from ..training.paired import PairedOptions, reference_conditioned, train_paired

    steps, batch, lr = DEFAULTS[("pairs", "embedded")]
    options = PairedOptions(steps=args.steps or steps, batch=args.batch or batch, lr=args.lr or lr, warmup=_warmup(args, 100),
                            seed=args.seed, time_budget_s=_budget(args), checkpoint_every=args.checkpoint_every or 250,
                            ema_decay=args.ema, lesion_weight=4.0 if args.lesion_weight is None else args.lesion_weight)
    backbone = _backbone(args)
    vital = _vital_layers(args, backbone)
    model, config = backbone.transformer, backbone.config
    if not config.reference_channels:
        model, config = reference_conditioned(config, model, args.refine_channels, args.seed)
    if args.bias_layers:
        config = replace(config, bias_layers=parse_layers(args.bias_layers, "--bias-layers"))
    if args.location_free_text:
        config = replace(config, location_free_text=True)
    backbone = Backbone(editor=build_editor(model, backbone.editor.encode_text, config), kind="embedded", config=config)
    train, val = _data(args, backbone.side)
    return train_paired(backbone, train, args.out, vital, options, val)


def _vital_layers(args: argparse.Namespace, backbone) -> tuple[int, ...]:
    if args.vital_layers:
        try:
            return tuple(int(v) for v in args.vital_layers.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"--vital-layers must be comma-separated integers, got {args.vital_layers!r}") from None
    if backbone.kind == "embedded" and backbone.config.vital_layers:
        return tuple(backbone.config.vital_layers)
    if backbone.kind == "flux" and backbone.num_layers == 57:
        from ..engines.flux import FLUX_DEV_VITAL_LAYERS

        return FLUX_DEV_VITAL_LAYERS
    raise ValueError(f"no vital layers: {args.init or args.flux} has none recorded; run `train vitality` or pass --vital-layers")


def _vitality(args: argparse.Namespace) -> dict:
    from ..training.loop import write_json
    from ..training.vitality import VitalityOptions, vitality_scores

    tau = args.tau if args.tau is not None or args.top_k is not None else 0.1
    options = VitalityOptions(samples=args.samples, steps=args.sample_steps, seed=args.seed, tau=tau, top_k=args.top_k)
    options.check()
    backbone = _backbone(args)
    train, _ = _data(_without_val(args), backbone.side)
    result = vitality_scores(backbone, train.source_texts + train.progression_texts, options)
    out = Path(args.out)
    write_json(out / "vitality.json", result)
    if backbone.kind == "embedded":
        _copy_with_vital_layers(Path(args.init), out, backbone.config, result["selected"])
    return {"scores": result["scores"], "selected": result["selected"], "seconds": result["seconds"]}


def _without_val(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "val_split": "none"})


def _copy_with_vital_layers(init: Path, out: Path, config, selected: list[int]) -> None:
    """OUT becomes a model folder: init's weights and config.json with vital_layers = the selected set."""
    if init.resolve() != out.resolve():
        shutil.copytree(init / "transformer", out / "transformer", dirs_exist_ok=True)
        strength = init / "gbca_strength.safetensors"
        if strength.is_file():
            shutil.copy2(strength, out / strength.name)
    replace(config, vital_layers=tuple(selected)).save(out / "config.json")


def _ar(args: argparse.Namespace) -> dict:
    """Emu3-Gen in bf16 (CUDA) or fp32 (CPU), then LoRA and GBCA-MLP training (training/ar.py)."""
    from ..ar.lora import load_lora
    from ..core.checkpoints import checkpoint_path
    from ..engines.ar import LeGendAREngine, default_gbca_layers
    from ..training.ar import ARTrainOptions, train_ar

    source = args.emu3 or checkpoint_path("emu3")
    if source is None:
        raise ValueError("train ar needs --emu3 PATH (or LEGEND_EMU3_PATH / checkpoints/emu3-gen/)")
    gbca_steps = 500 if args.gbca_steps is None else args.gbca_steps
    if gbca_steps < 0:
        raise ValueError(f"--gbca-steps must be ≥ 0, got {gbca_steps}")
    if args.init and args.steps is not None:
        raise ValueError(f"--steps trains a new LoRA; with --init {args.init} only the GBCA MLP trains (--gbca-steps)")
    if args.init and gbca_steps == 0:
        raise ValueError("--init with --gbca-steps 0 leaves nothing to train")
    steps, batch, lr = DEFAULTS[("ar", "emu3")]
    engine = LeGendAREngine.from_pretrained(source, quantization=None, device=args.device, model_side=args.side)
    backbone = engine.backbone
    if args.init:
        load_lora(backbone.model, args.init)
    options = ARTrainOptions(steps=0 if args.init else (args.steps or steps), batch=args.batch or batch, lr=args.lr or lr,
                             warmup=_warmup(args, 30), gbca_steps=gbca_steps, seed=args.seed,
                             time_budget_s=_budget(args), checkpoint_every=args.checkpoint_every or 500,
                             gradient_checkpointing=backbone.device.type == "cuda")
    layers = _vital_layers(args, None) if args.vital_layers else default_gbca_layers(backbone.num_layers)
    train, val = _data(args, args.side)
    return train_ar(backbone, train, args.out, layers, options, engine.strength_mlp, val)
