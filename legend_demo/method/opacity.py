"""The opacity model: an engine's change becomes a finding that obscures, in the film's attenuation (log) domain
(DESIGN anchors: lesion insertion adds attenuation in the log domain, and consolidation removes the vessel–air
contrast inside the consolidated volume).

Units: a ∈ [0, 1] is the film's stored value oriented dense-high and scaled over the stored range present in the
film (for a CR/DR film the stored value is proportional to log exposure, i.e. to attenuation; for a PNG/JPEG it is
the only value there is). Per pixel, with f ∈ [0, 1] the opacity (or lucency) fraction:

    B = G_σb * a                    the local background (ribs and vessels averaged out)
    F = G_σn * a − G_σv * a         fine texture: vessels and lung markings (grain below σn is kept)
    a_f = a − κ·√f·F                                 vessels fade (silhouette) ahead of the density; the grain stays
    towards a denser target t (soft tissue T):      a' = min(a_f + knee(f·max(t − B, 0), C − a_f), max(a, C))
    towards a darker target t (air, aerated lung):  a' = max(a_f + f·min(t − B, 0), min(a, floor))

Vessels fade as √f, ahead of the density: once part of the air around them is replaced, their contrast is mostly
gone (a faint opacity, f ≈ 0.2, keeps about 60 % of it: ground glass keeps vascular margins).
knee(d, room) = room·(1 − exp(−d/room)) for d > 0 (≈ d for small d, never above the ceiling C: nothing brighter than
the film's own dense soft tissue); κ = TEXTURE_FADE (vessels fade inside an opacity), κ_t = TEXTURE_FADE towards
air (no lung markings in a pneumothorax), 0 towards aerated lung (resolution keeps the vessels). Targets come from
the film itself (film_densities): T per row from the heart and mediastinum, C a high percentile of the heart,
mediastinum and the soft tissue under the domes, aerated lung per row, air the darkest lung. Every changed value
stays strictly inside the stored range present in the film, so nothing new reaches its ends.
Pure numpy + OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .film_anatomy import FilmAnatomy

TEXTURE_FADE = 0.9  # share of the fine texture removed at full opacity
CEILING_PERCENTILE = 90  # C: this percentile of heart + mediastinum + sub-diaphragmatic soft tissue
SOFT_TISSUE_PERCENTILE = 50  # T: this percentile of heart + mediastinum in a band of rows
LUNG_PERCENTILE = 35  # aerated lung: this percentile of the lung fields in a band of rows
AIR_PERCENTILE = 1  # air (pneumothorax): this percentile of the lung fields
ROW_BAND = 0.12  # rows within ± this fraction of the lung height count for a row's T and lung level
SIGMAS_OF_PAIR = {"background": 0.02, "vessel": 0.008, "grain": 0.0015}  # × the lung-pair width (≈ 5.6, 2.2, 0.4 mm)


@dataclass(frozen=True)
class FilmDensities:
    """What the film's own tissues look like, in attenuation units a: per grid row (h,) and scalars."""

    soft_tissue: np.ndarray  # (h,) T per grid row (standard display)
    lung: np.ndarray  # (h,) aerated lung per grid row
    ceiling: float  # C: the film's own dense soft tissue
    air: float  # the darkest lung
    source: str

    def describe(self) -> dict:
        return {"soft_tissue_T": [round(float(np.nanmin(self.soft_tissue)), 4), round(float(np.nanmax(self.soft_tissue)), 4)],
                "aerated_lung": [round(float(np.nanmin(self.lung)), 4), round(float(np.nanmax(self.lung)), 4)],
                "ceiling_C": round(self.ceiling, 4), "air": round(self.air, 4), "source": self.source}


def film_densities(a_grid: np.ndarray, anatomy: FilmAnatomy) -> FilmDensities:
    """Soft tissue, ceiling, aerated lung and air of a film from its attenuation on the anatomy grid (h, w)."""
    if a_grid.shape != anatomy.thorax.shape:
        raise ValueError(f"attenuation grid {a_grid.shape} differs from the anatomy grid {anatomy.thorax.shape}")
    h = a_grid.shape[0]
    lungs = (anatomy.lungs > 0.5).any(axis=0)
    middle = (anatomy.heart > 0.5) | (anatomy.mediastinum > 0.5)
    if lungs.sum() < 16 or middle.sum() < 16:
        low, mid, high = np.percentile(a_grid, (5, 30, 85))
        return FilmDensities(np.full(h, high, np.float32), np.full(h, mid, np.float32),
                             float(np.percentile(a_grid, 95)), float(low),
                             "no lung fields and mediastinum: percentiles of the whole film")
    below = (anatomy.below_diaphragm > 0.5) & ~np.isnan(anatomy.diaphragm)[None, :]
    rows = np.arange(h)[:, None]
    under_domes = below & (rows <= anatomy.diaphragm[None, :] + 0.08 * h) & anatomy._between_walls()
    ceiling = float(np.percentile(a_grid[middle | under_domes], CEILING_PERCENTILE))
    ys = np.flatnonzero(lungs.any(axis=1))
    band = max(2, int(ROW_BAND * (ys[-1] - ys[0] + 1)))
    soft = _row_percentile(a_grid, middle, band, SOFT_TISSUE_PERCENTILE)
    lung = _row_percentile(a_grid, lungs, band, LUNG_PERCENTILE)
    air = float(np.percentile(a_grid[lungs], AIR_PERCENTILE))
    soft = np.minimum(soft, ceiling)
    lung = np.clip(lung, air, soft)
    return FilmDensities(soft.astype(np.float32), lung.astype(np.float32), ceiling, air,
                         "this film: heart and mediastinum (T), lung fields (aerated lung, air), heart, mediastinum "
                         "and the soft tissue under the domes (C)")


def _row_percentile(image: np.ndarray, mask: np.ndarray, band: int, q: float) -> np.ndarray:
    """(h,) q-th percentile of `image` over `mask` in rows y ± band; rows without any held from the nearest."""
    h = image.shape[0]
    out = np.full(h, np.nan)
    for y in range(0, h, 4):  # every 4th row, interpolated between (the band is ≥ 2 rows either side)
        values = image[max(0, y - band):y + band + 1][mask[max(0, y - band):y + band + 1]]
        if values.size >= 8:
            out[y] = np.percentile(values, q)
    known = np.flatnonzero(np.isfinite(out))
    if not len(known):
        return np.full(h, float(np.percentile(image[mask], q)))
    return np.interp(np.arange(h), known, out[known])


def film_sigmas(anatomy: FilmAnatomy) -> dict[str, float]:
    """σ of the background, vessel and grain filters in film pixels (from the lung-pair width, else the film)."""
    width, _ = anatomy.standard_size
    grid_w, _ = anatomy.grid_size
    pair = anatomy.pair_width * width / grid_w if anatomy.pair_width > 0 else 0.7 * width
    return {name: max(0.3, fraction * pair) for name, fraction in SIGMAS_OF_PAIR.items()}


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of σ px (reflected borders); wide ones run on a copy shrunk by ≈ σ/3 and are resized back."""
    import cv2

    factor = int(sigma // 3)
    if factor < 2 or min(image.shape) < 4 * factor:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    h, w = image.shape
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma * small.shape[1] / w, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def knee(delta: np.ndarray, room: np.ndarray) -> np.ndarray:
    """room·(1 − exp(−delta/room)) for delta > 0 and room > 0: ≈ delta when small, never above room; 0 without room."""
    safe = np.maximum(room, 1e-6)
    out = safe * (1.0 - np.exp(-np.maximum(delta, 0.0) / safe))
    return np.where(room > 1e-6, out, 0.0)


def render_opacity(a: np.ndarray, fraction: np.ndarray, target: np.ndarray, texture_fade: np.ndarray,
                   ceiling: float, floor: np.ndarray, sigmas: dict[str, float]) -> np.ndarray:
    """The follow-up's attenuation (h, w) from the prior's `a` (h, w) in [0, 1].

    fraction (h, w) ∈ [−1, 1]: > 0 moves towards the denser `target`, < 0 towards the darker one (both (h, w),
    the caller picks per pixel); texture_fade (h, w) ∈ [0, 1]: κ per pixel; ceiling C; floor (h, w): the darkest a
    a pixel may reach (air). Outside fraction = 0 the result equals `a` exactly.
    """
    import cv2

    if not (a.shape == fraction.shape == target.shape == texture_fade.shape == floor.shape):
        raise ValueError(f"shapes differ: a {a.shape}, fraction {fraction.shape}, target {target.shape}, "
                         f"texture_fade {texture_fade.shape}, floor {floor.shape}")
    if np.abs(fraction).max(initial=0.0) > 1.0 + 1e-6:
        raise ValueError(f"opacity fractions must lie in [-1, 1], got up to {np.abs(fraction).max()}")
    a = np.asarray(a, np.float32)
    background = blur(a, sigmas["background"])
    texture = blur(a, sigmas["grain"]) - blur(a, sigmas["vessel"])
    strength = np.abs(fraction)
    up = fraction > 0
    faded = a - np.sqrt(strength) * texture_fade * texture  # vessels fade first (silhouette), the grain stays
    step = strength * (target - background)
    brighter = faded + knee(np.maximum(step, 0.0), ceiling - faded)  # towards soft tissue: into the ceiling
    brighter = np.minimum(brighter, np.maximum(a, ceiling))  # never brighter than the prior and the ceiling
    darker = np.maximum(faded + np.minimum(step, 0.0), np.minimum(a, floor))  # towards air: never below the floor
    out = np.where(up, brighter, darker)
    out = np.where(fraction == 0, a, out)
    return out.astype(np.float32)
