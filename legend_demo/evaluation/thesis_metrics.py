"""The thesis's evaluation metrics (§4.3.2, tables 4.1–5.2) as pure functions of images, features and scores.

- MS-SSIM (Wang, Simoncelli & Bovik 2003): 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 11×11
  Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, 2×2 average pooling between scales, contrast-structure terms
  clamped at 0 — computed by the pytorch-msssim package (valid windows, so each side must exceed 160 px).
- PSNR = 10·log10(L² / MSE) over the whole image (image_metrics.psnr), L = 1 on display values in [0, 1].
- FID (Heusel et al. 2017): ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) of two feature sets, Tr((Σ₁Σ₂)^½) taken as the sum
  of √eigenvalues of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (same value, numerically stable).
- KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³.
- AUC / F1 of a multi-label classifier against 0/1 labels, per label then macro-averaged over the labels that can
  be scored (AUC needs both classes present, F1 at least one positive).
- Direction score: for a described change, how the classifier's probability of the described finding moves from
  the prior to the follow-up, signed so that "rises for new/increased, falls for decreased/resolved" is positive.
"""
from __future__ import annotations

import math

import numpy as np

from .image_metrics import psnr

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WINDOW = 11
MS_SSIM_MIN_SIDE = (MS_SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1  # 161 px


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """MS-SSIM of two (H, W) images (Wang et al. 2003; 5 scales, standard weights); 1 for identical images."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"MS-SSIM needs two (H, W) images of one size, got {x.shape} and {y.shape}")
    if min(x.shape) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM at 5 scales needs images of at least {MS_SSIM_MIN_SIDE} px a side, got {x.shape}")
    if data_range <= 0:
        raise ValueError(f"data_range={data_range} must be positive")
    tx, ty = (torch.from_numpy(v)[None, None] for v in (x, y))  # (1, 1, H, W)
    value = _ms_ssim(tx, ty, data_range=data_range, win_size=MS_SSIM_WINDOW, weights=list(MS_SSIM_WEIGHTS))
    return float(value)


def full_psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    """PSNR (dB) over the whole image, data range 1; None (JSON null) for identical images (+inf)."""
    value = psnr(a, b)
    return None if math.isinf(value) else value


def _feature_matrix(features: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{what} needs an (N, D) feature array with N ≥ 2, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: the features hold non-finite values")
    return x


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two (N, D) feature sets: ‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½); 0 for a set against itself."""
    from scipy import linalg

    a, b = _feature_matrix(features_a, "FID"), _feature_matrix(features_b, "FID")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"FID: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # (D, D), ddof 1
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # symmetric Σa^½
    middle = root_a @ cov_b @ root_a
    eigenvalues = linalg.eigvalsh((middle + middle.T) / 2.0)  # PSD up to rounding
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3  # (n, n)
    k_yy = (y @ y.T / d + 1.0) ** 3  # (m, m)
    k_xy = (x @ y.T / d + 1.0) ** 3  # (n, m)
    n, m = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = 1000, subsets: int = 100,
                    seed: int = 0) -> tuple[float, float | None]:
    """KID (mean, std): unbiased MMD² with k(x, y) = (xᵀy/d + 1)³; over the whole sets when both have ≤ subset_size
    rows (std None), else the mean over `subsets` random subsets of that size (seeded)."""
    a, b = _feature_matrix(features_a, "KID"), _feature_matrix(features_b, "KID")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"KID: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    if max(len(a), len(b)) <= subset_size:
        return _mmd2_unbiased(a, b), None
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    values = [_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def classifier_scores(labels: np.ndarray, scores: np.ndarray, names: list[str], threshold: float = 0.5) -> dict:
    """Per-label and macro AUC / F1 of (N, P) scores against (N, P) 0/1 labels; F1 predicts score ≥ threshold.

    AUC is scored for labels with both classes present, F1 for labels with at least one positive."""
    from sklearn.metrics import f1_score, roc_auc_score

    y, s = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 2 or y.shape[1] != len(names):
        raise ValueError(f"labels {y.shape}, scores {s.shape} and {len(names)} names do not agree")
    per_label = {}
    for j, name in enumerate(names):
        positives = int(y[:, j].sum())
        auc = float(roc_auc_score(y[:, j], s[:, j])) if 0 < positives < len(y) else None
        f1 = float(f1_score(y[:, j], s[:, j] >= threshold, zero_division=0.0)) if positives else None
        per_label[name] = {"auc": auc, "f1": f1, "positives": positives, "n": int(len(y))}
    aucs = [v["auc"] for v in per_label.values() if v["auc"] is not None]
    f1s = [v["f1"] for v in per_label.values() if v["f1"] is not None]
    return {"auc": float(np.mean(aucs)) if aucs else None, "f1": float(np.mean(f1s)) if f1s else None,
            "per_label": per_label}


def direction_score(prior_probability: float, followup_probability: float, worsening: int) -> float | None:
    """(p_follow-up − p_prior) × (+1 new/increased, −1 decreased/resolved); None when the finding is unchanged."""
    if worsening not in (-1, 0, 1):
        raise ValueError(f"worsening must be -1, 0 or +1, got {worsening}")
    return None if worsening == 0 else float(worsening * (followup_probability - prior_probability))
