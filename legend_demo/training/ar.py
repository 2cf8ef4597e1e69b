"""`train ar`: the autoregressive LeGend on Emu3 (thesis §4.2.4, §4.3.3), on ICG-CXR-layout pair folders.

Phase 1 (LoRA): peft LoRA r = 32, α = 64, dropout 0.05 on the text decoder's q/k/v/o projections; teacher forcing
on [X_A; X_D; X_B] with the next-token loss on the X_B positions only (eq. 4.12: its visual and end-of-line tokens);
GBCA is active at its layers with the current (frozen) strength, the same rule as at inference (eq. 4.11).
Optimiser as in the thesis: Adam with decoupled weight decay (AdamW) β = (0.9, 0.95), eps 1e-6, weight decay 0.1,
gradient clipping at 5.0, lr 1e-5 with 30 warm-up steps and a cosine decay to 1e-6; batch 16 by gradient
accumulation of one pair per forward (pairs differ in text length; no padding inside a step).

Phase 2 (GBCA): everything frozen, only the strength MLP trained on the same loss — the s(τ) recipe of stage 2
(stage2.py), with the layer depth ℓ/(L−1) as the MLP's input since AR decoding has no flow time. AdamW lr 1e-2,
weight decay 0.01: s starts at 0.01 and Adam moves a weight by about lr per step (stage2.py explains the choice).

Outputs in OUT: lora/ (peft's adapter format, ar/lora.py; what LeGendAREngine.from_pretrained(lora=) reads),
gbca_strength.safetensors + ar_gbca.json (the GBCA layers), train_log.jsonl, train_state.json.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..ar.attention import ARGBCAState
from ..method.layer_spec import check_layers
from ..ar.backbone import ARBackbone
from ..ar.lora import LORA_ALPHA, LORA_DROPOUT, LORA_RANK, add_lora, save_lora
from ..ar.sequence import SequenceLayout, make_batch, teacher_forcing_row
from ..method.prior import gaussian_prior
from ..method.strength import StrengthMLP
from .data import PairSet
from .loop import ItemSampler, JsonlLog, Schedule, publish, start_run, write_json

LORA_DIR = "lora"
STRENGTH_FILE = "gbca_strength.safetensors"
LAYERS_FILE = "ar_gbca.json"
LOG_FILE = "train_log.jsonl"
STATE_FILE = "train_state.json"


@dataclass(frozen=True)
class ARTrainOptions:
    steps: int = 6000  # phase 1 optimizer steps
    batch: int = 16
    lr: float = 1e-5
    min_lr: float = 1e-6
    warmup: int = 30
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-6
    weight_decay: float = 0.1
    clip: float = 5.0
    rank: int = LORA_RANK
    alpha: int = LORA_ALPHA
    dropout: float = LORA_DROPOUT
    gbca_steps: int = 500  # phase 2 (0 = skip); the thesis trains GBCA-only on EditAR for 500 steps
    gbca_lr: float = 1e-2
    gbca_weight_decay: float = 0.01
    seed: int = 0
    time_budget_s: float | None = None  # per phase
    checkpoint_every: int = 500
    log_every: int = 10
    sigma_ratio: float = 0.10
    val_pairs: int = 16
    gradient_checkpointing: bool = False

    def check(self) -> None:
        if self.steps < 0 or self.gbca_steps < 0 or self.steps + self.gbca_steps < 1:
            raise ValueError(f"steps={self.steps} and gbca_steps={self.gbca_steps} must be ≥ 0 and not both 0")
        for name in ("batch", "checkpoint_every", "log_every", "rank", "val_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be ≥ 1")
        if not 0 < self.min_lr <= self.lr or not self.gbca_lr > 0:
            raise ValueError(f"need 0 < min_lr={self.min_lr} ≤ lr={self.lr} and gbca_lr={self.gbca_lr} > 0")
        if not 0 <= self.dropout < 1 or self.alpha <= 0 or self.clip <= 0:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1), alpha={self.alpha} and clip={self.clip} be positive")


@dataclass
class ARExample:
    """One pair as a teacher-forcing row: ids (S,), its layout, and the flattened prior r (N_A,) or None."""

    pair: str
    ids: torch.Tensor
    layout: SequenceLayout
    prior: torch.Tensor | None


def encode_pairs(backbone: ARBackbone, data: PairSet, sigma_ratio: float) -> list[ARExample]:
    """Tokenize every pair once (the VQ tokenizer is frozen): [X_A; X_D; X_B] rows and their priors (eq. 4.9)."""
    grid = backbone.codec.token_grid(data.side)
    codes = backbone.codec.encode(torch.cat([data.reference, data.follow_up])).cpu()  # (2P, N_A)
    count, examples = len(data), []
    for i in range(count):
        ids, layout = teacher_forcing_row(backbone.vocab, backbone.encode_text, codes[i], codes[count + i],
                                          data.progression_texts[i], grid)
        backbone.check_length(ids.numel())
        prior = gaussian_prior(data.points[i], (data.side, data.side), grid, sigma_ratio) if data.points[i] else None
        examples.append(ARExample(data.ids[i], ids, layout, None if prior is None else torch.from_numpy(prior.reshape(-1))))
    return examples


def x_b_targets(layout: SequenceLayout) -> torch.Tensor:
    """(N_B,) positions of X_B's tokens (visual and eol): the only positions the loss is taken on (eq. 4.12)."""
    return torch.arange(layout.b_start, layout.b_start + layout.b_length)


def x_b_loss(backbone: ARBackbone, example: ARExample, strength, bias_layers) -> torch.Tensor:
    """Mean next-token cross-entropy over X_B: −(1/N_B) Σ_n log p(X_B[n] | X_A, X_D, X_{B,<n}) (eq. 4.12)."""
    ids = example.ids[None]  # (1, S)
    batch = make_batch([example.ids], [example.layout], backbone.vocab.pad)
    state = ARGBCAState.for_batch(batch, ids.shape[1], backbone.num_layers, example.prior, strength, bias_layers, ())
    targets = x_b_targets(example.layout)  # (N_B,)
    logits, _ = backbone.forward(ids, state=state, logits_to_keep=(targets - 1).to(backbone.device))  # (1, N_B, V)
    return F.cross_entropy(logits[0].float(), ids[0, targets].to(logits.device))


def ar_optimizer(params, options: ARTrainOptions) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=options.lr, betas=options.betas, eps=options.eps, weight_decay=options.weight_decay)


def lora_schedule(options: ARTrainOptions) -> Schedule:
    """30 warm-up steps, cosine from 1e-5 down to 1e-6 (min_ratio = min_lr / lr)."""
    return Schedule(options.lr, max(options.steps, 1), warmup=options.warmup, budget_s=options.time_budget_s,
                    min_ratio=options.min_lr / options.lr)


def train_ar(backbone: ARBackbone, data: PairSet, out: str | Path, bias_layers, options: ARTrainOptions,
             strength: StrengthMLP | None = None, val: PairSet | None = None) -> dict:
    """Phase 1 (LoRA) then phase 2 (GBCA MLP only); publish both into `out`."""
    options.check()
    bias = check_layers("GBCA layers", bias_layers, backbone.num_layers)
    if not bias:
        raise ValueError("train ar needs at least one GBCA layer")
    out = start_run(out, options.seed)
    mlp = (strength or StrengthMLP()).to(backbone.device).float()
    train_set = encode_pairs(backbone, data, options.sigma_ratio)
    val_set = encode_pairs(backbone, val, options.sigma_ratio)[: options.val_pairs] if val is not None else None
    log = JsonlLog(out / LOG_FILE)
    log.write(event="start", stage="ar", pairs=len(train_set), gbca_layers=sorted(bias), options=asdict(options))
    summary: dict = {"gbca_layers": sorted(bias)}
    if options.steps:
        summary["lora"] = _train_lora(backbone, train_set, val_set, out, bias, mlp, options, log)
    if options.gbca_steps:
        summary["gbca"] = _train_gbca(backbone, train_set, val_set, out, bias, mlp, options, log)
    write_json(out / STATE_FILE, {"stage": "ar", **summary})
    return summary


def _train_lora(backbone, train_set, val_set, out, bias, mlp, options: ARTrainOptions, log: JsonlLog) -> dict:
    model = backbone.model
    params = add_lora(model, options.rank, options.alpha, options.dropout)
    if options.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    mlp.requires_grad_(False).eval()
    strength = _as_strength(mlp)
    optimizer, schedule = ar_optimizer(params, options), lora_schedule(options)
    history = _loop(backbone, train_set, val_set, out, bias, strength, params, optimizer, schedule, options, log, "lora",
                    lambda folder: save_lora(model, folder / LORA_DIR), clip=options.clip)
    model.eval()
    return history


def _train_gbca(backbone, train_set, val_set, out, bias, mlp: StrengthMLP, options: ARTrainOptions, log: JsonlLog) -> dict:
    backbone.model.requires_grad_(False).eval()
    mlp.train().requires_grad_(True)
    params = list(mlp.parameters())
    optimizer = torch.optim.AdamW(params, lr=options.gbca_lr, weight_decay=options.gbca_weight_decay)
    schedule = Schedule(options.gbca_lr, options.gbca_steps, budget_s=options.time_budget_s, min_ratio=1.0)  # constant
    if val_set:
        log.write(event="baseline", phase="gbca", val_loss_s0=validation_loss(backbone, val_set, bias, 0.0),
                  val_loss=validation_loss(backbone, val_set, bias, _as_strength(mlp)))

    def write(folder: Path) -> None:
        mlp.save(folder / STRENGTH_FILE)
        write_json(folder / LAYERS_FILE, {"gbca_layers": sorted(bias), "strength_input": "layer depth l/(L-1)"})

    history = _loop(backbone, train_set, val_set, out, bias, _as_strength(mlp), params, optimizer, schedule,
                    options, log, "gbca", write, clip=None)
    mlp.eval().requires_grad_(False)
    with torch.no_grad():
        history["strength_per_layer"] = {layer: round(float(mlp(torch.tensor([layer / max(backbone.num_layers - 1, 1)],
                                                                            device=backbone.device))), 6) for layer in sorted(bias)}
    return history


def _loop(backbone, train_set, val_set, out, bias, strength, params, optimizer, schedule: Schedule, options, log,
          phase: str, write, clip: float | None) -> dict:
    """Accumulate `batch` pairs per step, clip (when given), step, log, checkpoint; returns losses and validation loss."""
    generator = torch.Generator().manual_seed(options.seed)
    sampler = ItemSampler(len(train_set), generator)
    start, step, window, losses = time.perf_counter(), 0, [], []
    backbone.model.train(phase == "lora")  # LoRA/attention dropout only while the adapter trains
    while not schedule.done(step, time.perf_counter() - start):
        lr = schedule.lr_at(step, time.perf_counter() - start)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i in sampler.take(options.batch):
            loss = x_b_loss(backbone, train_set[i], strength, bias) / options.batch
            loss.backward()
            total += loss.item()
        grads = [p.grad.reshape(-1) for p in params if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.cat(grads))) if grads else 0.0
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        step += 1
        window.append(total)
        if step % options.log_every == 0 or schedule.done(step, time.perf_counter() - start):
            losses.append(sum(window) / len(window))
            log.write(phase=phase, step=step, loss=losses[-1], lr=lr, grad_norm=norm,
                      elapsed_s=round(time.perf_counter() - start, 1))
            window = []
        if step % options.checkpoint_every == 0:
            publish(out, write)
    backbone.model.eval()
    publish(out, write)
    val_loss = validation_loss(backbone, val_set, bias, strength) if val_set else None
    log.write(event="end", phase=phase, steps=step, val_loss=val_loss, seconds=round(time.perf_counter() - start, 1))
    return {"steps": step, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "val_loss": val_loss, "seconds": round(time.perf_counter() - start, 1)}


@torch.no_grad()
def validation_loss(backbone: ARBackbone, examples: list[ARExample], bias, strength) -> float:
    """Mean X_B cross-entropy over fixed validation pairs (strength 0.0 = GBCA off)."""
    was_training = backbone.model.training
    backbone.model.eval()
    losses = [float(x_b_loss(backbone, example, strength, bias)) for example in examples]
    backbone.model.train(was_training)
    return sum(losses) / len(losses)


def _as_strength(mlp: StrengthMLP):
    return lambda depth: mlp(depth.float())
