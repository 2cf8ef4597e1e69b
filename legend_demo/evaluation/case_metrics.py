"""Per-case quality metrics of one generated follow-up (issue 10 "Measure", like thesis table 5.2).

On the follow-up the user gets (the film, at the reference's own resolution):
- psnr_out / ssim_out: follow-up vs reference OUTSIDE the lesion mask dilated by a disk of radius
  max(1, round(min(H, W)/64)) px (4 px at 256²).
- lesion_change: mean(follow-up − reference) inside the exact (undilated) mask.
- lesion_fidelity: lesion_change × expected sign of the described change (None for "unchanged").
- shape_dice: Dice of the change's support (|Δ| ≥ 0.3·max) and the exact mask (shape_score.py).
On the engine's model view (no compositing, so inversion or reconstruction error cannot leak in):
- recon_psnr: PSNR(source row, the prior's model view) — how well the source row rebuilds the input.
- row_fidelity: mean(edit row − source row) inside the framed mask × expected sign.
- tiling: block-edge / interior gradient ratio of the edit row at the token period (1 = no token blocks);
  change_tiling: the same for the change that is composited (edit − source, after the engine's low-pass), the
  real follow-up's change (follow-up − reference at the model view) being the reference.
- attn_iou / cbi / ear: means over the captured (vital) layers; attn_iou ignores layers that have none.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..method.composite import model_view_change
from ..engines.base import GenerationResult
from ..core.geometry import SquareFrame
from .image_metrics import psnr, ssim
from .shape_score import shape_dice


def dilation_radius(side: int) -> int:
    """Pixels the lesion mask grows by before measuring edit locality: max(1, round(side / 64))."""
    return max(1, int(round(side / 64)))


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx**2 + yy**2 <= radius**2


def framed_mask(frame: SquareFrame, mask: np.ndarray) -> np.ndarray:
    """(H, W) bool in original pixels → (side, side) bool in model pixels (area-resampled, ≥ 0.5)."""
    return frame.apply(np.asarray(mask, dtype=np.float32)) >= 0.5


def outside_region(frame: SquareFrame, mask: np.ndarray) -> np.ndarray:
    """Model pixels that are image content (not frame padding) and outside the dilated lesion mask."""
    lesion = framed_mask(frame, mask)
    grown = ndimage.binary_dilation(lesion, structure=_disk(dilation_radius(frame.side)))
    content = framed_mask(frame, np.ones(tuple(reversed(frame.original_size)), dtype=bool))
    return content & ~grown


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe number: None for missing or non-finite values (PSNR of identical pixels is +inf)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _layer_mean(result: GenerationResult, key: str) -> float | None:
    values = [getattr(layer, key) for layer in result.layers]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def image_quality(followup: np.ndarray, reference: np.ndarray, frame: SquareFrame, mask: np.ndarray,
                  sign: int) -> dict[str, float | None]:
    """Edit locality and lesion fidelity of `followup` (model pixels) against the framed reference."""
    ref = frame.apply(reference)
    outside = outside_region(frame, mask)
    lesion = framed_mask(frame, mask)
    change = float((followup - ref)[lesion].mean()) if lesion.any() else None
    return {
        "psnr_out": finite_or_none(psnr(followup, ref, outside)),
        "ssim_out": ssim(followup, ref, outside),
        "lesion_change": change,
        "lesion_fidelity": None if change is None or sign == 0 else sign * change,
    }


def film_quality(followup: np.ndarray, reference: np.ndarray, mask: np.ndarray, sign: int) -> dict[str, float | None]:
    """Edit locality and lesion fidelity of a follow-up film (H, W) against the reference at its own resolution."""
    if followup.shape != reference.shape or mask.shape != reference.shape:
        raise ValueError(f"follow-up {followup.shape}, reference {reference.shape} and mask {mask.shape} differ")
    grown = ndimage.binary_dilation(mask, structure=_disk(dilation_radius(min(reference.shape))))
    change = float((followup - reference)[mask].mean()) if mask.any() else None
    return {
        "psnr_out": finite_or_none(psnr(followup, reference, ~grown)),
        "ssim_out": ssim(followup, reference, ~grown),
        "lesion_change": change,
        "lesion_fidelity": None if change is None or sign == 0 else sign * change,
        "shape_dice": shape_dice(followup - reference, mask),  # issue 19: the change's support vs the mask
    }


def tiling_ratio(image: np.ndarray, period: int) -> float:
    """Mean |gradient| across token borders (every `period` px) over the mean |gradient| inside tokens; 1 = no blocks."""
    image = np.asarray(image, dtype=np.float64)
    gx, gy = np.abs(np.diff(image, axis=1)), np.abs(np.diff(image, axis=0))  # (H, W−1), (H−1, W)
    border_x = (np.arange(gx.shape[1]) + 1) % period == 0
    border_y = (np.arange(gy.shape[0]) + 1) % period == 0
    borders = np.concatenate([gx[:, border_x].ravel(), gy[border_y].ravel()])
    inside = np.concatenate([gx[:, ~border_x].ravel(), gy[~border_y].ravel()])
    return float(borders.mean() / max(inside.mean(), 1e-12))


def composited_change(result: GenerationResult) -> np.ndarray:
    """edit − source at the model view, low-passed as the composite did (its film params); (side, side)."""
    sigma = (result.film.params if result.film is not None else {}).get("change_smoothing_model_px") or 0.0
    return model_view_change(result.source_reconstruction, result.followup, sigma)


def token_period(result: GenerationResult, grid: tuple[int, int]) -> int:
    return result.frame.side // grid[0]


def result_metrics(result: GenerationResult, reference: np.ndarray, mask: np.ndarray, sign: int,
                   grid: tuple[int, int]) -> dict:
    """Every per-case metric of one engine result (see the module docstring)."""
    lesion = framed_mask(result.frame, mask)
    row_change = float((result.followup - result.source_reconstruction)[lesion].mean()) if lesion.any() else None
    period = token_period(result, grid)
    row = {"recon_psnr": finite_or_none(psnr(result.source_reconstruction, result.prior_image)),
           "row_fidelity": None if row_change is None or sign == 0 else sign * row_change,
           "tiling": tiling_ratio(result.followup, period),
           "change_tiling": tiling_ratio(composited_change(result), period)}
    row.update(film_quality(result.film.display, reference, mask, sign))
    row.update({key: _layer_mean(result, key) for key in ("attn_iou", "cbi", "ear")})
    return row
