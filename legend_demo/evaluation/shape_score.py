"""The shape score of `evaluate` (issue 19): does the drawn change have the finding's shape?

Dice between the change's support — the pixels where |follow-up − reference| ≥ SUPPORT_FRACTION of its maximum — and
the true lesion mask, on the film. 1 = the change covers exactly the lesion; a change spread over a region much
larger than a small finding scores low; no change at all where the mask says something changed scores 0 (not
"no value": a follow-up that draws nothing has not drawn the finding's shape). Small findings (SMALL_TYPES) are
scored on their own as well. Pure numpy.
"""
from __future__ import annotations

import numpy as np

SUPPORT_FRACTION = 0.3
SMALL_TYPES = ("nodule",)  # the synthetic data's nodule/mass (Ø 1–3.2 cm): the findings the goal calls small


def shape_dice(change: np.ndarray, mask: np.ndarray, fraction: float = SUPPORT_FRACTION) -> float | None:
    """Dice(|change| ≥ fraction·max |change|, mask) for (H, W) arrays; None when the mask is empty, 0 when the
    change is."""
    if change.shape != mask.shape:
        raise ValueError(f"change {change.shape} and mask {mask.shape} differ in shape")
    if not 0 < fraction < 1:
        raise ValueError(f"support fraction must lie in (0, 1), got {fraction}")
    magnitude = np.abs(np.asarray(change, np.float64))
    mask = np.asarray(mask, bool)
    if not mask.any():
        return None
    if magnitude.max() <= 0:
        return 0.0
    support = magnitude >= fraction * magnitude.max()
    return float(2.0 * (support & mask).sum() / (support.sum() + mask.sum()))
