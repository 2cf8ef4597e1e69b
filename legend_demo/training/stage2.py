"""Stage 2 (thesis §5.3.1): freeze the backbone, train only the GBCA strength MLP s(τ) with vital-layer GBCA.

Per pair, one shared noise ε and flow time t give the rows [source; edit] = [(1−t)·ref + t·ε; (1−t)·flu + t·ε]
with texts [source-description; progression-description]. At the vital layers the edit row takes the source
row's K/V (eq. 5.10) and its keys get the Gaussian bias s(τ)·r of the pair's lesion points (eqs. 5.5–5.7),
through the same GBCAState/gbca_installed processors inference uses.

Loss: the edit row's velocity against ε − x₀(follow-up), token-weighted w = 1 + λ·m with m the lesion mask's
area coverage on the token grid (λ = lesion_weight; λ = 0 is the plain flow-matching MSE). The bias acts around
the lesion, so λ > 0 keeps the few lesion tokens from being drowned by the unchanged anatomy.

One pair per forward call (2 rows), gradients accumulated over `batch` pairs: GBCAState holds one prior and
reads one τ per call, exactly as at inference, so each pair keeps its own lesion prior and t.

Learning rate: the thesis uses AdamW lr 1e-5 (10 epochs of 11k pairs, batch 32, plus the vital-layer projections).
Adam moves a weight by about lr per step, and s(τ) starts at 0.01 (pre-activation ≈ −4.6), so a few hundred
CPU steps at 1e-5 could not move s at all; the embedded default is 1e-2.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ..method.layer_spec import check_layers
from ..method.processors import GBCAState, gbca_installed
from ..method.prior import gaussian_prior
from ..method.strength import StrengthMLP
from .backbone import Backbone
from .data import PairSet
from .flow import logit_normal, noisy, target_velocity, weighted_mse
from .loop import ItemSampler, JsonlLog, Schedule, publish, start_run, write_json

LOG_FILE = "train_log.jsonl"
STATE_FILE = "train_state.json"
STRENGTH_FILE = "gbca_strength.safetensors"
PROBE_TAUS = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Stage2Options:
    steps: int = 200
    batch: int = 8  # pairs per optimizer step (gradient accumulation)
    lr: float = 1e-2
    weight_decay: float = 0.01
    seed: int = 0
    time_budget_s: float | None = None
    checkpoint_every: int = 50
    log_every: int = 5
    lesion_weight: float = 3.0  # λ in w = 1 + λ·mask
    sigma_ratio: float = 0.10  # σ = 0.1·min(h, w), eq. 5.5
    val_pairs: int = 16

    def check(self) -> None:
        if self.batch < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError(
                f"batch={self.batch}, checkpoint_every={self.checkpoint_every} and log_every={self.log_every} must be ≥ 1"
            )
        if self.lesion_weight < 0 or self.weight_decay < 0:
            raise ValueError(f"lesion_weight={self.lesion_weight} and weight_decay={self.weight_decay} must be ≥ 0")


@dataclass
class EditPair:
    """One pair ready for the model: images (2, side, side) [ref; flu], texts, prior (N_img,), token weights (N_img,)."""

    images: torch.Tensor
    texts: list[str]
    prior: torch.Tensor
    weight: torch.Tensor


def train_stage2(backbone: Backbone, data: PairSet, out: str | Path, vital_layers, options: Stage2Options,
                 strength: StrengthMLP | None = None, val: PairSet | None = None) -> dict:
    """Train s(τ) only; publish it (and, for the embedded model, the whole model folder) into `out`."""
    options.check()
    schedule = Schedule(options.lr, options.steps, warmup=0, budget_s=options.time_budget_s, min_ratio=1.0)  # constant
    vital = check_layers("vital layers", vital_layers, backbone.num_layers)
    if not vital:
        raise ValueError("stage 2 needs at least one vital layer (run the vitality analysis or pass --vital-layers)")
    out = start_run(out, options.seed)
    backbone.transformer.requires_grad_(False).eval()
    mlp = (strength or StrengthMLP()).to(backbone.editor.device).float().train().requires_grad_(True)
    optimizer = torch.optim.AdamW(mlp.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    pairs = _usable(data)
    generator = torch.Generator().manual_seed(options.seed)
    sampler = ItemSampler(len(pairs), generator)
    val_set = _validation_set(backbone, val, options) if val is not None else None
    log = JsonlLog(out / LOG_FILE)
    log.write(event="start", stage="stage2", model=backbone.kind, pairs=len(pairs), vital_layers=sorted(vital),
              options=asdict(options))
    if val_set is not None:
        log.write(event="baseline", val_loss_s0=validation_loss(backbone, val_set, vital, 0.0),
                  val_loss=validation_loss(backbone, val_set, vital, mlp))

    start, step, window, history = time.perf_counter(), 0, [], []
    while not schedule.done(step, time.perf_counter() - start):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i in sampler.take(options.batch):
            pair = edit_pair(backbone, data, pairs[i], options)
            loss = edit_loss(backbone, pair, vital, mlp, generator) / options.batch
            loss.backward()
            total += loss.item()
        grad_norm = float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in mlp.parameters()])))
        optimizer.step()
        step += 1
        window.append(total)
        if step % options.log_every == 0:
            elapsed = time.perf_counter() - start
            history.append(sum(window) / len(window))
            log.write(step=step, loss=history[-1], grad_norm=grad_norm, strength=_probe(mlp), elapsed_s=round(elapsed, 1),
                      steps_per_s=round(step / elapsed, 3))
            window = []
        if step % options.checkpoint_every == 0 and not schedule.done(step, time.perf_counter() - start):
            _checkpoint(backbone, mlp, vital, out, val_set, log, step, start, False, options)
    val_loss = _checkpoint(backbone, mlp, vital, out, val_set, log, step, start, True, options)
    return {"steps": step, "first_loss": history[0] if history else None, "last_loss": history[-1] if history else None,
            "val_loss": val_loss, "strength": _probe(mlp), "seconds": round(time.perf_counter() - start, 1)}


def edit_pair(backbone: Backbone, data: PairSet, index: int, options: Stage2Options) -> EditPair:
    """Pair `index` of `data` with its Gaussian prior (eq. 5.5) and lesion-weighted token weights on the token grid."""
    grid = backbone.token_grid()
    prior = gaussian_prior(data.points[index], (data.side, data.side), grid, options.sigma_ratio)  # (h, w)
    coverage = cv2.resize(data.mask[index].numpy(), (grid[1], grid[0]), interpolation=cv2.INTER_AREA)  # (h, w)
    weight = 1.0 + options.lesion_weight * np.clip(coverage, 0, 1)  # (h, w)
    return EditPair(
        images=torch.stack([data.reference[index], data.follow_up[index]]),  # (2, side, side)
        texts=[data.source_texts[index], data.progression_texts[index]],
        prior=torch.from_numpy(prior.reshape(-1).astype(np.float32)),  # (N_img,) row-major like the tokens
        weight=torch.from_numpy(weight.reshape(-1).astype(np.float32)),  # (N_img,)
    )


def edit_loss(backbone: Backbone, pair: EditPair, vital: frozenset[int], strength, generator: torch.Generator | None,
              t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted MSE of the edit row's velocity vs ε − x₀(follow-up), with GBCA at the vital layers.

    strength: the StrengthMLP (trained), or a fixed float (e.g. 0.0 for the GBCA-off baseline).
    """
    x0 = backbone.encode_images(pair.images)  # (2, N, C): [reference; follow-up]
    if noise is None:
        noise = torch.randn((1, *x0.shape[1:]), generator=generator)
    noise = noise.to(x0).expand_as(x0)  # (2, N, C): one ε shared by both rows
    if t is None:
        t = logit_normal(1, generator)
    t = t.to(device=x0.device, dtype=x0.dtype).expand(2)  # (2,): one t shared by both rows
    embeds, pooled = backbone.encode_text(pair.texts)  # (2, T, J), (2, P)
    fn = strength if isinstance(strength, (int, float)) else (lambda tau: strength(tau.float()))
    state = GBCAState(prior=pair.prior, strength=fn, bias_layers=vital, inject_layers=vital, dual=True)
    with gbca_installed(backbone.transformer, state):
        v = backbone.velocity(noisy(x0, noise, t), t, embeds, pooled)  # (2, N, C): [source; edit]
    target = target_velocity(x0[1:], noise[1:])  # (1, N, C)
    return weighted_mse(v[1:], target, pair.weight[None].to(v.device))


def _usable(data: PairSet) -> list[int]:
    pairs = data.with_points()
    if not pairs:
        raise ValueError(f"none of the {len(data)} pairs has lesion points; stage 2 needs a prior per pair")
    return pairs


def _validation_set(backbone: Backbone, val: PairSet, options: Stage2Options) -> list[tuple[EditPair, torch.Tensor, torch.Tensor]]:
    """Fixed pairs with fixed noise and stratified t (so s = 0 and learned s(τ) see the same draws)."""
    pairs = _usable(val)[: options.val_pairs]
    n_img = backbone.token_grid()[0] * backbone.token_grid()[1]
    channels = backbone.encode_images(val.reference[:1]).shape[-1]
    g = torch.Generator().manual_seed(4321)
    return [
        (edit_pair(backbone, val, i, options), torch.tensor([(k + 0.5) / len(pairs)]), torch.randn(1, n_img, channels, generator=g))
        for k, i in enumerate(pairs)
    ]


@torch.no_grad()
def validation_loss(backbone: Backbone, val_set, vital: frozenset[int], strength) -> float:
    losses = [float(edit_loss(backbone, pair, vital, strength, None, t, noise)) for pair, t, noise in val_set]
    return sum(losses) / len(losses)


@torch.no_grad()
def _probe(mlp: StrengthMLP) -> dict[str, float]:
    values = mlp(torch.tensor(PROBE_TAUS, device=next(mlp.parameters()).device)).tolist()
    return {f"tau={tau}": round(v, 5) for tau, v in zip(PROBE_TAUS, values)}


def _checkpoint(backbone: Backbone, mlp: StrengthMLP, vital: frozenset[int], out: Path, val_set, log: JsonlLog,
                step: int, start: float, finished: bool, options: Stage2Options) -> float | None:
    """Publish s(τ) (embedded: the whole model folder with vital_layers in config.json); log the validation loss."""
    mlp.eval()
    if backbone.kind == "embedded":
        from ..embedded.model import save_model

        config = replace(backbone.config, vital_layers=tuple(sorted(vital)))
        publish(out, lambda folder: save_model(folder, backbone.transformer, config, mlp))
    else:
        publish(out, lambda folder: mlp.save(folder / STRENGTH_FILE))
    val_loss = validation_loss(backbone, val_set, vital, mlp) if val_set is not None else None
    mlp.train()
    elapsed = round(time.perf_counter() - start, 1)
    log.write(event="checkpoint", step=step, val_loss=val_loss, strength=_probe(mlp), elapsed_s=elapsed, finished=finished)
    write_json(out / STATE_FILE, {"stage": "stage2", "model": backbone.kind, "step": step, "elapsed_s": elapsed,
                                  "finished": finished, "val_loss": val_loss, "vital_layers": sorted(vital),
                                  "strength": _probe(mlp), "options": asdict(options)})
    return val_loss
