"""Reader-study statistics (pure numpy/scipy): bootstrap and t-intervals, Wilson intervals, Fleiss' kappa, ICC(2,1)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


MIN_N_FOR_INTERVAL = 5  # fewer ratings than this: the mean is shown without any interval, and said so
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20260  # fixed: the same ratings always give the same interval


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval (nan bounds when n is too small).

    method names how the interval was made ("t", "wilson", "bootstrap"); note says why it is missing or flagged."""

    value: float
    low: float
    high: float
    n: int
    method: str = ""
    note: str = ""

    def as_text(self, digits: int = 2, with_n: bool = False) -> str:
        if math.isnan(self.value):
            return "–"
        count = f"n={self.n}"
        if math.isnan(self.low):
            detail = f"{count}, {self.note}" if self.note else count
            return f"{self.value:.{digits}f} ({detail})" if (with_n or self.note) else f"{self.value:.{digits}f}"
        text = f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        if self.note:
            return f"{text} ({count}, {self.note})"
        return f"{text} ({count})" if with_n else text


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def mean_t_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean ± t_{1-α/2, n-1} · s/√n (Student t-interval; s is the n−1 sample standard deviation)."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, n, "t")


def mean_bootstrap_interval(values: Sequence[float], confidence: float = 0.95, *, scale: tuple[float, float] = (1, 5),
                            resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                            min_n: int = MIN_N_FOR_INTERVAL) -> Estimate:
    """Mean with a percentile-bootstrap interval (resampling the ratings with replacement, seeded).

    Every resampled mean is a mean of scale values, so the interval always lies inside the scale — unlike a
    t-interval, which gives "3.50 [−2.85, 9.85]" on a 1–5 scale for n = 2. Below `min_n` ratings no interval
    is given and the note says so; a value outside `scale` raises ValueError."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "bootstrap", "no ratings")
    if not np.isfinite(x).all() or x.min() < scale[0] or x.max() > scale[1]:
        raise ValueError(f"ratings must lie on the {scale[0]:g}–{scale[1]:g} scale, got {sorted(set(x.tolist()))}")
    mean = float(x.mean())
    if n < min_n:
        return Estimate(mean, math.nan, math.nan, n, "bootstrap", "too few for an interval")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # (resamples,)
    alpha = (1.0 - confidence) / 2
    low, high = (float(v) for v in np.quantile(means, [alpha, 1.0 - alpha]))
    note = "all ratings equal" if low == high else ""
    return Estimate(mean, low, high, n, "bootstrap", note)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Proportion with the Wilson score interval: (p̂ + z²/2n ± z√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)."""
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 ≤ successes ≤ n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "wilson", "no ratings")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ = (P̄ − P̄_e) / (1 − P̄_e) from an (subjects, categories) table of rater counts.

    Every subject must be rated by the same number n ≥ 2 of raters (each row sums to n).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 2:
        raise ValueError(f"counts must be (subjects, ≥2 categories), got shape {table.shape}")
    if (table < 0).any():
        raise ValueError("counts must be non-negative")
    raters = table.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError(f"every subject needs the same number (≥ 2) of raters, got row sums {sorted(set(raters.tolist()))}")
    n, subjects = raters[0], table.shape[0]
    p_j = table.sum(axis=0) / (subjects * n)  # share of all assignments per category
    p_i = ((table * table).sum(axis=1) - n) / (n * (n - 1))  # agreement per subject
    p_bar, p_e = float(p_i.mean()), float((p_j * p_j).sum())
    if math.isclose(p_e, 1.0):
        return math.nan  # every rating in one category: κ is undefined
    return (p_bar - p_e) / (1 - p_e)


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1) (Shrout & Fleiss: two-way random, absolute agreement, single rater) of a (targets, raters) matrix.

    ICC = (MSR − MSE) / (MSR + (k−1)·MSE + k·(MSC − MSE)/n).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be (≥2 targets, ≥2 raters), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("ratings must be complete (no missing values)")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_error = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_error / ((n - 1) * (k - 1))
    denominator = msr + (k - 1) * mse + k * (msc - mse) / n
    return math.nan if math.isclose(denominator, 0.0) else float((msr - mse) / denominator)
