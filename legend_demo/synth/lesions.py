"""Changes inserted into the CT in 3D, using the TotalSegmentator labels, at severity levels 0 (absent) to 3.

Every lesion is a fixed shape for one pair, grown by severity, so a smaller level's region lies inside a larger
one's (increase/decrease is a change of extent, not a new lesion). `apply(hu_box, level)` returns the edited HU
inside `box`: hu + w·(target − hu), with a soft weight w ∈ [0, 1] that is zero outside the region.

Physics simplifications (documented):
- consolidation: a noisy-distance blob around a random seed voxel intersected with the named lobe, HU pulled
  75–95 % of the way to soft tissue (+10…+40 HU, textured); no air bronchograms.
- nodule/mass: lobulated ellipsoid of +40 HU inside the lung (radius 5/9/16 mm; level 3 is a mass > 3 cm).
- pleural effusion: the CT is supine, but the film is upright PA, so fluid (+15 HU) fills the INFERIOR part of
  the chosen lung up to a level, rising towards the lateral chest wall (meniscus); the lung is not displaced and
  fluid outside the labelled lung (pleural space proper) is not modelled.
- cardiomegaly: the heart label dilated mostly left-right (anisotropic distance), soft tissue +40 HU, never
  over bone or airway.
- pneumothorax: an apical-lateral rim of the lung (2D in-plane distance from the lung edge) set to air
  (−1000 HU, no vessels) with a thin visceral pleural line (−550 HU: a sub-voxel sheet) at the new, medially
  shifted lung edge and the adjacent lung band (as wide as the rim) made denser (+20 HU): compressed, not lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .volume import LOBE_STRUCTURES, ChestVolume

Box = tuple[slice, slice, slice]
LEVELS = (1, 2, 3)
LESION_TYPES = ("consolidation", "nodule", "effusion", "pneumothorax", "cardiomegaly")
LUNG_SIDES = ("right", "left")


def bounding_box(mask: np.ndarray, margin: int = 0, origin: tuple[int, ...] = (0, 0, 0)) -> Box:
    """Smallest box (full-volume coordinates) around True voxels of `mask` placed at `origin`, grown by margin."""
    coords = np.nonzero(mask)
    if coords[0].size == 0:
        raise ValueError(f"cannot box an empty mask of shape {mask.shape}")
    return tuple(slice(max(0, int(c.min()) - margin + o), int(c.max()) + margin + 1 + o)  # type: ignore[return-value]
                 for c, o in zip(coords, origin))


def clip_box(box: Box, shape: tuple[int, int, int]) -> Box:
    return tuple(slice(max(0, s.start), min(n, s.stop)) for s, n in zip(box, shape))  # type: ignore[return-value]


def smooth_noise(shape: tuple[int, ...], sigma_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation, float32; drawn coarse and upsampled when smooth."""
    factor = max(1, int(sigma_vox // 2))
    coarse = tuple(max(2, -(-n // factor)) for n in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma_vox / factor)
    if factor > 1:
        import torch
        import torch.nn.functional as F

        field = F.interpolate(torch.from_numpy(field)[None, None], size=shape, mode="trilinear",
                              align_corners=False)[0, 0].numpy()
    return field / max(float(field.std()), 1e-6)


def _memo(volume: ChestVolume, key: tuple, compute):
    """Per-volume memo for deterministic, costly fields (distance maps), so a worker computes each once."""
    if key not in volume._cache:
        volume._cache[key] = compute()
    return volume._cache[key]


def _distance_from(point: np.ndarray, shape: tuple[int, ...], voxel_mm: float, axes_scale=(1.0, 1.0, 1.0)):
    """(h, w, d) scaled Euclidean distance in mm of every voxel of a box from `point` (box coordinates)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return np.sqrt(sum(((g - p) / a) ** 2 for g, p, a in zip(grids, point, axes_scale))) * voxel_mm


def _lung_extent(volume: ChestVolume, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of rows, columns and depths that the side's lung occupies (memoised)."""
    lung = volume.lung_mask(side)
    return _memo(volume, ("extent", side), lambda: tuple(
        np.nonzero(lung.any(axis=axes))[0] for axes in ((1, 2), (0, 2), (0, 1))))


def zone_of(volume: ChestVolume, side: str, row: float) -> str:
    """upper / middle / lower third of the side's lung height at image row `row`."""
    rows = _lung_extent(volume, side)[0]
    fraction = (row - rows.min()) / max(rows.max() - rows.min(), 1)
    return "upper" if fraction < 1 / 3 else ("middle" if fraction < 2 / 3 else "lower")


@dataclass
class Lesion:
    """A lesion shape in `box`: weights(level) → (h, w, d) float32 in [0, 1]; target HU (scalar or array)."""

    kind: str
    side: str  # patient side: right / left / none
    lobe: str | None
    zone: str
    box: Box
    _weights: dict
    target_hu: float | np.ndarray

    def weights(self, level: int) -> np.ndarray:
        if level not in (0, *LEVELS):
            raise ValueError(f"severity level must be 0..3, got {level}")
        if level == 0:
            return np.zeros(tuple(s.stop - s.start for s in self.box), dtype=np.float32)
        return self._weights[level]

    def apply(self, hu_box: np.ndarray, level: int) -> np.ndarray:
        """Edited copy of hu_box (h, w, d) at this severity."""
        weight = self.weights(level)  # (h, w, d)
        return (hu_box + weight * (self.target_hu - hu_box)).astype(np.float32)


def lobe_box(volume: ChestVolume, side: str, lobe: str) -> tuple[Box, np.ndarray]:
    """The lobe's bounding box and its (h, w, d) mask inside the box (memoised)."""
    def compute():
        mask = volume.labels == volume.lobe_id(side, lobe)
        box = bounding_box(mask)
        return box, mask[box]
    return _memo(volume, ("lobe_box", side, lobe), compute)


def consolidation(volume: ChestVolume, side: str, lobe: str, rng: np.random.Generator) -> Lesion:
    """Blob of airspace opacity filling part of one lobe (level 3 ≈ most of the lobe)."""
    box, inside = lobe_box(volume, side, lobe)  # inside: (h, w, d)
    candidates = np.argwhere(inside)
    seed = candidates[rng.integers(len(candidates))]
    noise = smooth_noise(inside.shape, 5.0, rng)
    distance = _distance_from(seed, inside.shape, volume.voxel_mm) * (1.0 + 0.3 * noise)  # (h, w, d) mm
    extent = max(s.stop - s.start for s in box) * volume.voxel_mm
    strength = rng.uniform(0.75, 0.95)
    weights = {level: (strength * np.clip((extent * frac - distance) / 6.0, 0, 1) * inside).astype(np.float32)
               for level, frac in zip(LEVELS, (0.14, 0.3, 0.6))}
    target = (25.0 + 15.0 * smooth_noise(inside.shape, 2.0, rng)).astype(np.float32)  # (h, w, d) HU
    row = box[0].start + float(np.average(np.nonzero(weights[2])[0], weights=weights[2][weights[2] > 0]))
    return Lesion("consolidation", side, lobe, zone_of(volume, side, row), box, weights, target)


def nodule(volume: ChestVolume, side: str, lobe: str, rng: np.random.Generator) -> Lesion:
    """Lobulated soft-tissue ellipsoid well inside one lobe's lung; level 3 is a mass."""
    radii_mm = {1: 5.0, 2: 9.0, 3: 16.0}
    lung = volume.lung_mask(side)
    box_of_lobe, in_lobe = lobe_box(volume, side, lobe)
    depth = _memo(volume, ("lung_depth", side, lobe), lambda: ndimage.distance_transform_edt(
        lung[box_of_lobe], sampling=volume.voxel_mm))  # (h, w, d) mm to the lung edge
    candidates = np.argwhere(in_lobe & (depth >= radii_mm[3] + 4.0))
    if len(candidates) == 0:
        candidates = np.argwhere(depth == depth[in_lobe].max())
    center = candidates[rng.integers(len(candidates))] + [s.start for s in box_of_lobe]
    half = int(np.ceil(radii_mm[3] * 1.5 / volume.voxel_mm)) + 2
    box = clip_box(tuple(slice(int(c) - half, int(c) + half + 1) for c in center), volume.shape)
    local = center - [s.start for s in box]
    noise = smooth_noise(tuple(s.stop - s.start for s in box), 2.0, rng)
    radius = _distance_from(local, noise.shape, volume.voxel_mm, rng.uniform(0.8, 1.25, 3)) * (1 + 0.08 * noise)
    in_lung = lung[box]
    weights = {lv: (np.clip((r - radius) / 1.5, 0, 1) * in_lung).astype(np.float32) for lv, r in radii_mm.items()}
    return Lesion("nodule", side, lobe, zone_of(volume, side, float(center[0])), box, weights, 40.0)


def effusion(volume: ChestVolume, side: str, rng: np.random.Generator) -> Lesion:
    """Fluid in the inferior part of one lung with a meniscus rising towards the lateral chest wall."""
    lung = volume.lung_mask(side)
    rows, cols, depths = _lung_extent(volume, side)
    bottom = int(rows.max())
    heights_mm = {lv: h * rng.uniform(0.85, 1.15) for lv, h in zip(LEVELS, (20.0, 45.0, 80.0))}
    meniscus = rng.uniform(0.6, 1.2)
    rise = int(np.ceil(heights_mm[3] * (1 + meniscus) / volume.voxel_mm)) + 2
    box = (slice(max(0, bottom - rise), bottom + 1), slice(int(cols.min()), int(cols.max()) + 1),
           slice(int(depths.min()), int(depths.max()) + 1))
    lateral, medial = (cols.min(), cols.max()) if side == "right" else (cols.max(), cols.min())
    x = np.arange(box[1].start, box[1].stop)
    lateralness = np.clip((x - medial) / (lateral - medial), 0, 1)[None, :, None]  # (1, w, 1)
    height = ((bottom - np.arange(box[0].start, box[0].stop)) * volume.voxel_mm)[:, None, None]  # (h, 1, 1) mm
    in_lung = lung[box]
    weights = {lv: (np.clip((h * (1 + meniscus * lateralness**3) - height) / 6.0, 0, 1) * in_lung)
               .astype(np.float32) for lv, h in heights_mm.items()}
    return Lesion("effusion", side, None, "costophrenic", box, weights, 15.0)


def pneumothorax(volume: ChestVolume, side: str, rng: np.random.Generator) -> Lesion:
    """Apical-lateral rim of lung turned to air, bounded by a thin pleural line at the shifted lung edge."""
    lung = volume.lung_mask(side)
    rows, cols, depths = _lung_extent(volume, side)
    top, scale = int(rows.min()), rng.uniform(0.85, 1.15)
    extents_mm = {lv: h * scale for lv, h in zip(LEVELS, (45.0, 80.0, 130.0))}
    rims_mm = {lv: r * scale for lv, r in zip(LEVELS, (6.0, 11.0, 18.0))}
    tallest = int(np.ceil(130.0 * 1.15 / volume.voxel_mm)) + 8
    full = (slice(top, min(volume.shape[0], top + tallest)),
            slice(int(cols.min()), int(cols.max()) + 1), slice(int(depths.min()), int(depths.max()) + 1))
    # in-plane (coronal) distance to the lung edge: huge sampling along depth keeps the search within the slice
    edge_full = _memo(volume, ("coronal_edge", side), lambda: ndimage.distance_transform_edt(
        lung[full], sampling=(volume.voxel_mm, volume.voxel_mm, 1e4)))
    height = min(full[0].stop - top, int(np.ceil(extents_mm[3] / volume.voxel_mm)) + 1)
    box = (slice(top, top + height), full[1], full[2])
    in_lung, edge_mm = lung[box], edge_full[:height]
    lateral, medial = (cols.min(), cols.max()) if side == "right" else (cols.max(), cols.min())
    x = np.arange(box[1].start, box[1].stop)
    lateralness = np.clip((x - medial) / (lateral - medial), 0, 1)[None, :, None]  # (1, w, 1)
    below_apex = (np.arange(box[0].stop - box[0].start) * volume.voxel_mm)[:, None, None]  # (h, 1, 1) mm
    allowed = in_lung & ((lateralness >= 0.35) | (below_apex <= 30.0))
    weights, target = {}, np.full(in_lung.shape, -1000.0, dtype=np.float32)
    for level in LEVELS:
        rim = rims_mm[level] * np.clip(1 - (below_apex / extents_mm[level]) ** 2, 0, 1)  # (h, 1, 1) mm
        weights[level] = (allowed & (edge_mm <= rim + 1.6) & (rim > 0)).astype(np.float32)
    lines, bands = {}, {}
    for level in LEVELS:
        rim = rims_mm[level] * np.clip(1 - (below_apex / extents_mm[level]) ** 2, 0, 1)  # (h, 1, 1) mm
        lines[level] = allowed & (edge_mm > rim) & (weights[level] > 0)
        bands[level] = allowed & (rim > 0) & (edge_mm > rim + 1.6) & (edge_mm <= 2 * rim + 1.6)
    return _PneumothoraxLesion("pneumothorax", side, None, "apical", box, weights, target, lines=lines,
                               bands=bands)


@dataclass
class _PneumothoraxLesion(Lesion):
    """Pneumothorax: air (−1000 HU) in the rim, a −550 HU pleural line and a compressed (+20 HU) lung band."""

    lines: dict | None = None
    bands: dict | None = None

    def apply(self, hu_box: np.ndarray, level: int) -> np.ndarray:
        edited = super().apply(hu_box, level)
        if level:
            edited[self.bands[level]] += 20.0
            edited[self.lines[level]] = -550.0
        return edited


def _heart_fields(volume: ChestVolume) -> tuple[Box, np.ndarray, np.ndarray]:
    """Box around the heart (+ max growth), anisotropic distance outside the heart (mm), voxels free to fill."""
    heart = np.isin(volume.labels, [volume.label_id("heart"), volume.label_id("atrial_appendage_left")])
    full = clip_box(bounding_box(heart, margin=int(np.ceil(17.0 * 1.15 * 1.4 / volume.voxel_mm)) + 4),
                    volume.shape)
    sampling = (1.5 * volume.voxel_mm, 0.85 * volume.voxel_mm, 1.2 * volume.voxel_mm)  # mostly left-right growth
    distance = ndimage.distance_transform_edt(~heart[full], sampling=sampling)  # (h, w, d) mm
    protected_groups = {"vertebrae", "ribs", "skeleton"}
    protected = [i for i, group in volume.structures.values() if group in protected_groups]
    protected += [volume.label_id(n) for n in ("trachea", "spinal_cord", "esophagus")]
    free = ~np.isin(volume.labels[full], protected) & ~heart[full]
    return full, distance, free


def cardiomegaly(volume: ChestVolume, rng: np.random.Generator) -> Lesion:
    """Heart label dilated (more left-right than up-down), never over bone, airway or spinal canal."""
    growth_mm = {lv: g * rng.uniform(0.85, 1.15) for lv, g in zip(LEVELS, (6.0, 11.0, 17.0))}
    full, distance_full, free_full = _memo(volume, ("heart_fields",), lambda: _heart_fields(volume))
    margin = int(np.ceil(growth_mm[3] * 1.4 / volume.voxel_mm)) + 2
    local = bounding_box(distance_full <= 0, margin=margin)  # heart voxels have distance 0
    local = clip_box(local, distance_full.shape)
    box = tuple(slice(f.start + l.start, f.start + l.stop) for f, l in zip(full, local))
    distance, free = distance_full[local], free_full[local]
    weights = {lv: (free & (distance <= g)).astype(np.float32) for lv, g in growth_mm.items()}
    return Lesion("cardiomegaly", "none", None, "cardiac", box, weights, 40.0)


def make_lesion(kind: str, volume: ChestVolume, side: str, lobe: str | None, rng: np.random.Generator) -> Lesion:
    """Dispatch by type; raises ValueError naming bad kind/side/lobe."""
    if kind not in LESION_TYPES:
        raise ValueError(f"unknown change type {kind!r}; known: {LESION_TYPES}")
    if kind == "cardiomegaly":
        return cardiomegaly(volume, rng)
    if side not in LUNG_SIDES:
        raise ValueError(f"{kind} needs side right or left, got {side!r}")
    if kind in ("consolidation", "nodule"):
        if (side, lobe) not in LOBE_STRUCTURES:
            raise ValueError(f"{kind} needs a lobe of the {side} lung, got {lobe!r}")
        return (consolidation if kind == "consolidation" else nodule)(volume, side, lobe, rng)
    return {"effusion": effusion, "pneumothorax": pneumothorax}[kind](volume, side, rng)
