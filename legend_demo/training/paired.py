"""Paired dual-path training of the embedded model: all weights, on (prior, follow-up) pairs, exactly as it generates.

Every pair p of a batch gives two rows that share one noise ε_p and one flow time t_p (as the dual path shares its
start): the source row x_t = (1−t)·ref + t·ε with the source description, target velocity ε − ref, and the edit row
x_t = (1−t)·flu + t·ε with the progression description, target ε − flu. Both rows see the prior's tokens as extra
input channels (reference conditioning). GBCA runs as at inference: at the vital layers the edit row takes the source
row's image K/V (eq. 5.10) and its keys get the bias s·r_p of the pair's Gaussian prior (eqs. 5.5–5.7), with s drawn
per pair (0 for a share of pairs, so "GBCA off" stays a trained mode); the lesion points are the only location
signal the model gets. Loss: MSE with pixel weights 1 + λ·mask on the edit rows (the lesion-weighted paired loss).

Captions are dropped (→ "") for a share of pairs, so classifier-free guidance stays possible. Images get the same
random gamma/contrast per pair (films differ in exposure), points a small jitter (grounders are imprecise).
Checkpoints: the EMA weights are published as a model folder; resume.pt keeps optimiser, EMA and step.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ..embedded.model import EmbeddedConfig, inner_flux, new_transformer, save_model
from ..core.points import LesionPoint
from ..method.prior import gaussian_prior
from ..method.layer_spec import check_layers
from ..method.processors import GBCAState, gbca_installed
from .backbone import Backbone
from .data import PairSet
from .ema import EMA
from .flow import logit_normal, noisy, target_velocity
from .loop import ItemSampler, JsonlLog, Schedule, publish, write_json

LOG_FILE = "train_log.jsonl"
STATE_FILE = "train_state.json"
RESUME_FILE = "resume.pt"


@dataclass(frozen=True)
class PairedOptions:
    steps: int = 20000
    batch: int = 8  # pairs per step (2 rows each)
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    lesion_weight: float = 4.0  # λ in w = 1 + λ·mask (edit rows)
    sigma_ratio: float = 0.10
    strength_range: tuple[float, float] = (1.0, 6.0)  # s ~ U(range) for biased pairs
    p_strength_off: float = 0.2  # share of pairs trained with s = 0
    p_caption_drop: float = 0.1
    point_jitter: float = 0.02  # σ of the point jitter, in units of the side
    seed: int = 0
    time_budget_s: float | None = None
    checkpoint_every: int = 250
    log_every: int = 25
    val_pairs: int = 32

    def check(self) -> None:
        if min(self.batch, self.checkpoint_every, self.log_every, self.steps) < 1:
            raise ValueError(f"steps, batch, checkpoint_every and log_every must be ≥ 1: {self}")
        if not (0 <= self.p_strength_off <= 1 and 0 <= self.p_caption_drop <= 1):
            raise ValueError(f"p_strength_off={self.p_strength_off} and p_caption_drop={self.p_caption_drop} must lie in [0, 1]")
        lo, hi = self.strength_range
        if not 0 <= lo <= hi:
            raise ValueError(f"strength_range={self.strength_range} must be 0 ≤ low ≤ high")


def reference_conditioned(config: EmbeddedConfig, transformer, refine_channels: int = 24, seed: int = 0):
    """A reference-conditioned copy of a plain embedded model: same weights, the prior's input columns at zero,
    and a new refinement head whose last layer is zero (so it starts as the plain model's velocity)."""
    new_config = replace(config, reference_channels=True, refine_channels=refine_channels)
    model = new_transformer(new_config, seed)
    old = inner_flux(transformer).state_dict()
    new = inner_flux(model).state_dict()
    for name, value in old.items():
        if name == "x_embedder.weight":
            new[name].zero_()
            new[name][:, : value.shape[1]] = value  # (hidden, C) of the noisy tokens; prior columns stay 0
        else:
            new[name].copy_(value)
    inner_flux(model).load_state_dict(new)
    return model, new_config


def train_paired(backbone: Backbone, data: PairSet, out: str | Path, vital_layers, options: PairedOptions,
                 val: PairSet | None = None, resume: bool = True) -> dict:
    """Train every weight of a reference-conditioned embedded model on pairs; publish EMA checkpoints into `out`."""
    options.check()
    if backbone.kind != "embedded" or not backbone.config.reference_channels:
        raise ValueError("paired training needs a reference-conditioned embedded model (see reference_conditioned())")
    vital = check_layers("vital layers", vital_layers, backbone.num_layers)
    if not vital:
        raise ValueError("paired training needs at least one vital layer")
    if data.side != backbone.side:
        raise ValueError(f"data were loaded at {data.side} px but the model works at {backbone.side} px")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = backbone.transformer
    params = list(model.parameters())
    model.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    ema = EMA(params, options.ema_decay)
    generator = torch.Generator().manual_seed(options.seed)
    sampler = ItemSampler(len(data), generator)
    step = _resume(out, optimizer, ema, params, sampler, generator) if resume else 0
    schedule = Schedule(options.lr, options.steps, warmup=options.warmup, budget_s=options.time_budget_s)
    val_batch = _validation_batch(val, options, backbone.token_grid()) if val is not None else None
    config = replace(backbone.config, vital_layers=tuple(sorted(vital)))
    log = JsonlLog(out / LOG_FILE)
    log.write(event="start" if step == 0 else "resume", stage="pairs", step=step, pairs=len(data),
              trainable=sum(p.numel() for p in params), vital_layers=sorted(vital), options=asdict(options))

    start, window, first_step = time.perf_counter(), [], step
    while not schedule.done(step, _elapsed(start)):
        lr = schedule.lr_at(step, _elapsed(start))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _batch(data, sampler.take(options.batch), options, generator, backbone.token_grid(), train=True)
        loss = paired_loss(backbone, batch, vital)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, options.grad_clip))
        optimizer.step()
        ema.update()
        step += 1
        window.append(loss.item())
        if step % options.log_every == 0:
            rate = (step - first_step) / _elapsed(start)
            log.write(step=step, loss=sum(window) / len(window), lr=lr, grad_norm=grad_norm, epoch=sampler.epoch,
                      elapsed_s=round(_elapsed(start), 1), steps_per_s=round(rate, 3))
            window = []
        if step % options.checkpoint_every == 0 or schedule.done(step, _elapsed(start)):
            _checkpoint(backbone, config, out, ema, optimizer, sampler, generator, val_batch, vital, log, step, options)
    model.eval()
    return {"steps": step, "seconds": round(_elapsed(start), 1)}


def paired_loss(backbone: Backbone, batch: dict, vital: frozenset[int], strength=None) -> torch.Tensor:
    """Lesion-weighted MSE of both rows' velocities, with dual-path GBCA at the vital layers.

    strength: None (the batch's drawn per-pair strengths), a float for every pair, or s(τ) (a StrengthMLP).
    """
    ref = backbone.encode_images(batch["reference"])  # (P, N, C)
    flu = backbone.encode_images(batch["follow_up"])  # (P, N, C)
    pairs = ref.shape[0]
    x0 = torch.cat([ref, flu])  # (2P, N, C): [source rows; edit rows]
    noise = backbone.editor.codec.pack(batch["noise"]).to(x0).repeat(2, 1, 1)  # (2P, N, C): ε shared by a pair's rows
    t = batch["t"].to(x0).repeat(2)  # (2P,)
    embeds, pooled = backbone.encode_text(batch["source_texts"] + batch["progression_texts"])  # (2P, T, J), (2P, P)
    if isinstance(strength, torch.nn.Module):
        per_row = lambda tau: strength(tau.float()).to(x0)  # noqa: E731 — s(τ) per row; source rows get no prior
    else:
        s = batch["strength"] if strength is None else torch.full((pairs,), float(strength))
        per_row = torch.cat([torch.zeros(pairs), s]).to(x0)  # (2P,): source rows unbiased
    biased = vital if backbone.editor.bias_layers is None else frozenset(backbone.editor.bias_layers)
    state = GBCAState(prior=batch["prior"].to(x0), strength=per_row,  # prior (P, N_img)
                      bias_layers=biased, inject_layers=vital, dual=True)
    with gbca_installed(backbone.transformer, state):
        v = backbone.velocity(noisy(x0, noise, t), t, embeds, pooled, reference=ref.repeat(2, 1, 1))  # (2P, N, C)
    weight = torch.cat([torch.ones_like(batch["weight"]), batch["weight"]])  # (2P, S, S)
    weight = backbone.editor.codec.pack(weight).to(x0)  # (2P, N, C) pixel weights in token layout
    err = (v.float() - target_velocity(x0, noise).float()).pow(2)
    return (weight * err).sum() / weight.sum()


def _batch(data: PairSet, idx: list[int], options: PairedOptions, generator: torch.Generator,
           grid: tuple[int, int], train: bool) -> dict:
    """Images (P, S, S), texts, priors (P, N_img), pixel weights (P, S, S), strengths (P,), noise (P, S, S) and t."""
    side = data.side
    ref, flu = data.reference[idx].clone(), data.follow_up[idx].clone()
    if train:
        ref, flu = _exposure(ref, flu, generator)
    points = [_jitter(data.points[i], side, options.point_jitter if train else 0.0, generator) for i in idx]
    prior = np.stack([gaussian_prior(p, (side, side), grid, options.sigma_ratio).reshape(-1) for p in points])
    masks = np.stack([_dilated(data.mask[i].numpy(), side) for i in idx])
    drop = torch.rand(len(idx), generator=generator) < (options.p_caption_drop if train else 0.0)
    strength = torch.empty(len(idx)).uniform_(*options.strength_range, generator=generator)
    strength[torch.rand(len(idx), generator=generator) < options.p_strength_off] = 0.0
    return {
        "reference": ref, "follow_up": flu,
        "source_texts": ["" if d else data.source_texts[i] for d, i in zip(drop.tolist(), idx)],
        "progression_texts": ["" if d else data.progression_texts[i] for d, i in zip(drop.tolist(), idx)],
        "prior": torch.from_numpy(prior.astype(np.float32)),
        "weight": torch.from_numpy(1.0 + options.lesion_weight * masks),
        "strength": strength,
        "noise": torch.randn((len(idx), side, side), generator=generator),  # pixel-space ε (the codec is exact)
        "t": logit_normal(len(idx), generator),
    }


def _exposure(ref: torch.Tensor, flu: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random gamma (0.8–1.25) and contrast (0.85–1.15 about the mean) for both images of a pair."""
    p = ref.shape[0]
    gamma = torch.exp(torch.empty(p, 1, 1).uniform_(math.log(0.8), math.log(1.25), generator=generator))
    contrast = torch.empty(p, 1, 1).uniform_(0.85, 1.15, generator=generator)

    def apply(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return ((x.clamp(0, 1) ** gamma - mean) * contrast + mean).clamp(0, 1)

    mean = (ref.clamp(0, 1) ** gamma).mean(dim=(1, 2), keepdim=True)
    return apply(ref, mean), apply(flu, mean)


def _jitter(points: list[LesionPoint], side: int, scale: float, generator: torch.Generator) -> list[LesionPoint]:
    if not scale:
        return list(points)
    moved = []
    for p in points:
        dx, dy = (torch.randn(2, generator=generator) * scale * side).tolist()
        moved.append(LesionPoint(min(max(p.x + dx, 0.0), side - 1e-3), min(max(p.y + dy, 0.0), side - 1e-3), p.confidence, p.label))
    return moved


def _dilated(mask: np.ndarray, side: int) -> np.ndarray:
    """The lesion mask dilated by side/64 px (the evaluation's margin), as float32 (S, S)."""
    radius = max(1, round(side / 64))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((mask > 0.5).astype(np.uint8), kernel).astype(np.float32)


def _validation_batch(val: PairSet, options: PairedOptions, grid: tuple[int, int]) -> dict:
    idx = val.with_points()[: options.val_pairs]
    batch = _batch(val, idx, options, torch.Generator().manual_seed(4321), grid, train=False)
    batch["t"] = (torch.arange(len(idx)) + 0.5) / len(idx)  # stratified, fixed
    mirrored = [[LesionPoint(val.side - p.x, p.y) for p in val.points[i]] for i in idx]
    batch["mirrored_prior"] = torch.from_numpy(np.stack(
        [gaussian_prior(p, (val.side, val.side), grid, options.sigma_ratio).reshape(-1) for p in mirrored]).astype(np.float32))
    return batch


@torch.no_grad()
def validation_losses(backbone: Backbone, batch: dict, vital: frozenset[int], strength: float = 4.0) -> dict[str, float]:
    """Loss with the true points at strength s, with GBCA off, and with the points mirrored (location probe)."""
    mirrored = {**batch, "prior": batch["mirrored_prior"]}
    return {
        f"val_loss_s{strength:g}": float(paired_loss(backbone, batch, vital, strength)),
        "val_loss_s0": float(paired_loss(backbone, batch, vital, 0.0)),
        f"val_loss_mirrored_s{strength:g}": float(paired_loss(backbone, mirrored, vital, strength)),
    }


def _checkpoint(backbone, config, out: Path, ema: EMA, optimizer, sampler, generator, val_batch, vital, log, step, options) -> None:
    backbone.transformer.eval()
    with ema.applied():
        publish(out, lambda folder: save_model(folder / "model", backbone.transformer, config))
        losses = validation_losses(backbone, val_batch, vital) if val_batch is not None else {}
    backbone.transformer.train()
    torch.save({"step": step, "optimizer": optimizer.state_dict(), "ema": ema.shadow, "updates": ema.updates,
                "params": [p.detach() for p in ema.params], "sampler": (sampler.order, sampler.epoch),
                "generator": generator.get_state()}, out / (RESUME_FILE + ".tmp"))
    (out / (RESUME_FILE + ".tmp")).replace(out / RESUME_FILE)
    log.write(event="checkpoint", step=step, **losses)
    write_json(out / STATE_FILE, {"stage": "pairs", "step": step, "vital_layers": sorted(vital), **losses,
                                  "options": asdict(options)})


def _resume(out: Path, optimizer, ema: EMA, params, sampler: ItemSampler, generator: torch.Generator) -> int:
    path = out / RESUME_FILE
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    with torch.no_grad():
        for p, saved in zip(params, state["params"]):
            p.copy_(saved)
        for shadow, saved in zip(ema.shadow, state["ema"]):
            shadow.copy_(saved)
    ema.updates = state["updates"]
    optimizer.load_state_dict(state["optimizer"])
    sampler.order, sampler.epoch = state["sampler"]
    generator.set_state(state["generator"])
    return int(state["step"])


@dataclass(frozen=True)
class StrengthOptions:
    """Stage 2 of the thesis on the embedded model: only s(τ) and the vital layers' attention projections train."""

    steps: int = 600
    batch: int = 8
    lr_strength: float = 1e-2  # s(τ) starts at 0.01 (pre-activation ≈ −4.6): it needs a large step to move
    lr_projections: float = 3e-5
    weight_decay: float = 0.01
    lesion_weight: float = 4.0
    sigma_ratio: float = 0.10
    p_caption_drop: float = 0.0
    point_jitter: float = 0.02
    seed: int = 1
    checkpoint_every: int = 100
    log_every: int = 10
    val_pairs: int = 32
    time_budget_s: float | None = None


def vital_projections(backbone: Backbone, vital: frozenset[int]) -> list[torch.nn.Parameter]:
    """Query/key/value/output projection weights of the vital layers' attention (eq. 5.10's GBCA parameters)."""
    from ..method.processors import attention_layers

    params = []
    for layer, _, attn in attention_layers(backbone.transformer):
        if layer in vital:
            for name in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"):
                module = getattr(attn, name, None)
                if module is not None:
                    params += list(module.parameters())
            if getattr(attn, "to_out", None) is not None:
                params += list(attn.to_out[0].parameters())
    return params


def train_strength(backbone: Backbone, data: PairSet, out: str | Path, vital_layers, options: StrengthOptions,
                   val: PairSet | None = None) -> dict:
    """Train s(τ) (init 0.01) and the vital layers' projections with the lesion-weighted paired loss; publish the
    model folder (config.json with the vital layers, weights, gbca_strength.safetensors) into `out`."""
    from ..method.strength import StrengthMLP

    vital = check_layers("vital layers", vital_layers, backbone.num_layers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backbone.transformer.requires_grad_(False).train()
    projections = vital_projections(backbone, vital)
    for param in projections:
        param.requires_grad_(True)
    mlp = (backbone.editor.strength_mlp or StrengthMLP()).float().train().requires_grad_(True)
    optimizer = torch.optim.AdamW([{"params": list(mlp.parameters()), "lr": options.lr_strength},
                                   {"params": projections, "lr": options.lr_projections}],
                                  weight_decay=options.weight_decay)
    generator = torch.Generator().manual_seed(options.seed)
    sampler = ItemSampler(len(data), generator)
    batch_options = PairedOptions(batch=options.batch, lesion_weight=options.lesion_weight, sigma_ratio=options.sigma_ratio,
                                  p_caption_drop=options.p_caption_drop, point_jitter=options.point_jitter,
                                  p_strength_off=0.0, val_pairs=options.val_pairs)
    val_batch = _validation_batch(val, batch_options, backbone.token_grid()) if val is not None else None
    config = replace(backbone.config, vital_layers=tuple(sorted(vital)))
    log = JsonlLog(out / LOG_FILE)
    log.write(event="start", stage="gbca", pairs=len(data), vital_layers=sorted(vital),
              trainable=sum(p.numel() for p in projections) + sum(p.numel() for p in mlp.parameters()),
              options=asdict(options))
    if val_batch is not None:
        log.write(event="baseline", **_strength_validation(backbone, val_batch, vital, mlp))
    start, step, window = time.perf_counter(), 0, []
    while step < options.steps and not (options.time_budget_s and _elapsed(start) > options.time_budget_s):
        batch = _batch(data, sampler.take(options.batch), batch_options, generator, backbone.token_grid(), train=True)
        loss = paired_loss(backbone, batch, vital, mlp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        window.append(loss.item())
        if step % options.log_every == 0:
            log.write(step=step, loss=sum(window) / len(window), strength=_probe(mlp), elapsed_s=round(_elapsed(start), 1))
            window = []
        if step % options.checkpoint_every == 0 or step == options.steps:
            backbone.transformer.eval()
            publish(out, lambda folder: save_model(folder / "model", backbone.transformer, config, mlp))
            losses = _strength_validation(backbone, val_batch, vital, mlp) if val_batch is not None else {}
            backbone.transformer.train()
            log.write(event="checkpoint", step=step, strength=_probe(mlp), **losses)
            write_json(out / STATE_FILE, {"stage": "gbca", "step": step, "strength": _probe(mlp), **losses,
                                          "options": asdict(options)})
    backbone.transformer.eval()
    return {"steps": step, "strength": _probe(mlp), "seconds": round(_elapsed(start), 1)}


@torch.no_grad()
def _strength_validation(backbone, batch, vital, mlp) -> dict[str, float]:
    mirrored = {**batch, "prior": batch["mirrored_prior"]}
    return {"val_loss_learned": float(paired_loss(backbone, batch, vital, mlp)),
            "val_loss_s0": float(paired_loss(backbone, batch, vital, 0.0)),
            "val_loss_mirrored_learned": float(paired_loss(backbone, mirrored, vital, mlp))}


@torch.no_grad()
def _probe(mlp) -> dict[str, float]:
    taus = (0.1, 0.5, 0.9)
    return {f"tau={t}": round(v, 4) for t, v in zip(taus, mlp(torch.tensor(taus)).tolist())}


def _elapsed(start: float) -> float:
    return time.perf_counter() - start
