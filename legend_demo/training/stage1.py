"""Stage 1 (thesis §5.3.1): flow matching on single radiographs — domain adaptation of the backbone.

Items are (reference, source-description) and (follow-up, progression-description). Loss (rectified flow):
x_t = (1 − t)·x₀ + t·ε, t ~ logit-normal, L = ‖v_θ(x_t, t, text) − (ε − x₀)‖².
- embedded model: every transformer weight is trained (AdamW, warm-up + cosine, EMA), saved with save_model;
- FLUX (any FluxPipeline): a peft LoRA r = 16, α = 32 on the attention q/k/v/out projections, base frozen.
Checkpoints are published atomically every `checkpoint_every` steps, so a killed run leaves usable weights.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .backbone import Backbone
from .data import PairSet
from .ema import EMA
from .flow import logit_normal, noisy, target_velocity, weighted_mse
from .lora import add_lora, save_lora
from .loop import ItemSampler, JsonlLog, Schedule, publish, start_run, write_json

LOG_FILE = "train_log.jsonl"
STATE_FILE = "train_state.json"


@dataclass(frozen=True)
class Stage1Options:
    steps: int = 2000
    batch: int = 16  # images per step
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 100
    seed: int = 0
    time_budget_s: float | None = None
    checkpoint_every: int = 100
    log_every: int = 10
    ema_decay: float = 0.999  # embedded (full) training only; 0 turns it off
    grad_clip: float = 1.0
    val_items: int = 32

    def check(self) -> None:
        if self.batch < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError(
                f"batch={self.batch}, checkpoint_every={self.checkpoint_every} and log_every={self.log_every} must be ≥ 1"
            )
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} must lie in [0, 1)")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be ≥ 0 and grad_clip={self.grad_clip} > 0")


def train_stage1(
    backbone: Backbone, data: PairSet, out: str | Path, options: Stage1Options, val: PairSet | None = None
) -> dict:
    """Train, checkpoint into `out`, return a summary (steps, first/last logged loss, val loss, seconds)."""
    options.check()
    schedule = Schedule(options.lr, options.steps, options.warmup, options.time_budget_s)
    _check_side(backbone, data)
    out = start_run(out, options.seed)
    params = _trainable(backbone)
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    ema = EMA(params, options.ema_decay) if backbone.kind == "embedded" and options.ema_decay > 0 else None
    images, texts = data.images_and_texts()  # (2P, side, side), 2P texts
    generator = torch.Generator().manual_seed(options.seed)
    sampler = ItemSampler(len(texts), generator)
    val_batch = _validation_batch(val, options, backbone) if val is not None else None
    log = JsonlLog(out / LOG_FILE)
    log.write(event="start", stage="stage1", model=backbone.kind, items=len(texts), trainable=sum(p.numel() for p in params),
              options=asdict(options))

    start, step, window, history = time.perf_counter(), 0, [], []
    backbone.transformer.train()
    while not schedule.done(step, time.perf_counter() - start):
        lr = schedule.lr_at(step, time.perf_counter() - start)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = sampler.take(options.batch)
        loss = flow_loss(backbone, images[idx], [texts[i] for i in idx], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, options.grad_clip))
        optimizer.step()
        if ema is not None:
            ema.update()
        step += 1
        window.append(loss.item())
        if step % options.log_every == 0:
            elapsed = time.perf_counter() - start
            history.append(sum(window) / len(window))
            log.write(step=step, loss=history[-1], lr=lr, grad_norm=grad_norm, epoch=sampler.epoch,
                      elapsed_s=round(elapsed, 1), steps_per_s=round(step / elapsed, 3))
            window = []
        if step % options.checkpoint_every == 0 and not schedule.done(step, time.perf_counter() - start):
            _checkpoint(backbone, out, ema, val_batch, log, step, start, finished=False, options=options)
    val_loss = _checkpoint(backbone, out, ema, val_batch, log, step, start, finished=True, options=options)
    backbone.transformer.eval()
    return {"steps": step, "first_loss": history[0] if history else None, "last_loss": history[-1] if history else None,
            "val_loss": val_loss, "seconds": round(time.perf_counter() - start, 1)}


def flow_loss(backbone: Backbone, images01: torch.Tensor, texts: list[str], generator: torch.Generator,
              t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Rectified-flow MSE on a batch of images (B, side, side) in [0, 1] with their captions."""
    x0 = backbone.encode_images(images01)  # (B, N, C)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator)
    noise = noise.to(x0)
    if t is None:
        t = logit_normal(x0.shape[0], generator)
    t = t.to(device=x0.device, dtype=x0.dtype)  # (B,)
    embeds, pooled = backbone.encode_text(texts)
    v = backbone.velocity(noisy(x0, noise, t), t, embeds, pooled)  # (B, N, C)
    return weighted_mse(v, target_velocity(x0, noise))


def _trainable(backbone: Backbone) -> list[torch.nn.Parameter]:
    if backbone.kind == "flux":
        return add_lora(backbone.transformer)
    backbone.transformer.requires_grad_(True)
    return list(backbone.transformer.parameters())


def _check_side(backbone: Backbone, data: PairSet) -> None:
    if data.side != backbone.side:
        raise ValueError(f"data were loaded at {data.side} px but the model works at {backbone.side} px")


def _validation_batch(val: PairSet, options: Stage1Options, backbone: Backbone) -> dict:
    """A fixed validation batch: the first K items, fixed noise, stratified t = (k + ½)/K (comparable across runs)."""
    _check_side(backbone, val)
    images, texts = val.images_and_texts()
    k = min(options.val_items, len(texts))
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(1234))[:k].tolist()
    x0 = backbone.encode_images(images[order])  # (K, N, C)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4321))
    return {"images": images[order], "texts": [texts[i] for i in order], "noise": noise,
            "t": (torch.arange(k) + 0.5) / k}


@torch.no_grad()
def validation_loss(backbone: Backbone, batch: dict, chunk: int = 16) -> float:
    backbone.transformer.eval()
    losses = []
    for s in range(0, len(batch["texts"]), chunk):
        part = slice(s, s + chunk)
        loss = flow_loss(backbone, batch["images"][part], batch["texts"][part], None, batch["t"][part], batch["noise"][part])
        losses.append(float(loss) * len(batch["texts"][part]))
    backbone.transformer.train()
    return sum(losses) / len(batch["texts"])


def _checkpoint(backbone: Backbone, out: Path, ema: EMA | None, val_batch: dict | None, log: JsonlLog,
                step: int, start: float, finished: bool, options: Stage1Options) -> float | None:
    """Publish the weights (the EMA for the embedded model), log the validation loss, update train_state.json."""
    from contextlib import nullcontext

    val_loss = None
    with ema.applied() if ema is not None else nullcontext():
        if backbone.kind == "flux":
            publish(out, lambda folder: save_lora(folder, backbone.transformer))
        else:
            from ..embedded.model import save_model

            publish(out, lambda folder: save_model(folder, backbone.transformer, backbone.config))
        if val_batch is not None:
            val_loss = validation_loss(backbone, val_batch)
    elapsed = round(time.perf_counter() - start, 1)
    log.write(event="checkpoint", step=step, val_loss=val_loss, elapsed_s=elapsed, finished=finished)
    write_json(out / STATE_FILE, {"stage": "stage1", "model": backbone.kind, "step": step, "elapsed_s": elapsed,
                                  "finished": finished, "val_loss": val_loss, "options": asdict(options)})
    return val_loss
