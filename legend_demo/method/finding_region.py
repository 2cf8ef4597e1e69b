"""Where a finding can be, in the film's anatomy: its compartment, as a soft mask on the anatomy grid
(DESIGN "A change is a finding in the patient's anatomy"; seed 001's organ-mask regulation; seed 004's severity).

compartment(anatomy, finding, point) → Compartment: a (h, w) weight in [0, 1] on the anatomy grid that is the
finding's shape and density profile there, and a description for the report:
- airspace (consolidation, opacity, atelectasis, …) and diffuse findings: the lung field of the finding's side,
  within the named lobe's projection on a PA film (upper lobe: the upper LOBE_BANDS of the lung height, lower lobe:
  the lower part, middle lobe / lingula: the medial lower-middle part) or the named zone;
- nodule / mass: a sphere of the written size, projected (its chord √(1 − (d/r)²): densest at the centre, a crisp
  edge), its size from PixelSpacing (else the lung-pair width taken as PAIR_WIDTH_CM), or
  NODULE_CM / MASS_CM by word and severity, inside the lung field (grown by the radius: a mass may abut the wall);
- pleural effusion: the dependent part of the hemithorax's lung field, below a meniscus that rises towards the
  lateral chest wall; its height above the costophrenic recess grows with severity (EFFUSION_HEIGHT); denser
  towards the base;
- pneumothorax: a rim inside the lung field along its apical and lateral pleura, as wide as PNEUMOTHORAX_RIM of the
  lung-pair width at the apex, tapering to nothing PNEUMOTHORAX_EXTENT of the lung height below it;
- cardiomegaly: a band outside the heart borders, wider left–right than up–down (CARDIAC_GROWTH);
- mediastinal widening: a band outside the upper mediastinum;
- other findings (bones, devices, the diaphragm itself): no compartment (the footprint alone), said so.
Every intrathoracic compartment is cut at the diaphragm line and at the chest wall. Pure numpy + OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .findings import MASS_WORDS, Finding
from .film_anatomy import PATIENT_SIDES, FilmAnatomy

PAIR_WIDTH_CM = 28.0  # without PixelSpacing, the two lung fields together are taken as this wide
NODULE_CM = 1.5  # diameter of a nodule without a written size (level 2); small ×0.6, large ×1.5
MASS_CM = 4.0  # diameter of a mass without a written size
EFFUSION_HEIGHT = {0.5: 0.07, 1.0: 0.13, 1.5: 0.20, 2.0: 0.28, 2.5: 0.38, 3.0: 0.50, 3.5: 0.70}  # × lung height
EFFUSION_MEDIAL_EDGE = 0.30  # the medial 30 % of the lung's width (behind the heart) gets no fluid, fading in over 25 %
EFFUSION_RISE = 0.6  # the meniscus rises this fraction of the effusion's height towards the lateral wall
PNEUMOTHORAX_RIM = {0.5: 0.02, 1.0: 0.035, 1.5: 0.045, 2.0: 0.06, 2.5: 0.08, 3.0: 0.10, 3.5: 0.14}  # × pair width
PNEUMOTHORAX_EXTENT = {0.5: 0.25, 1.0: 0.35, 1.5: 0.45, 2.0: 0.55, 2.5: 0.65, 3.0: 0.80, 3.5: 0.95}  # × lung height
CARDIAC_GROWTH = {0.5: 0.02, 1.0: 0.03, 1.5: 0.045, 2.0: 0.06, 2.5: 0.075, 3.0: 0.09, 3.5: 0.11}  # × pair width
LOBE_BANDS = {"upper": (0.0, 0.62), "middle": (0.40, 0.92), "lower": (0.36, 1.0)}  # rows, × lung height (PA)
ZONE_BANDS = {"upper": (0.0, 0.40), "middle": (0.28, 0.72), "lower": (0.58, 1.0), "apex": (0.0, 0.28),
              "base": (0.62, 1.0), "perihilar": (0.25, 0.72), "suprahilar": (0.12, 0.45), "infrahilar": (0.45, 0.80),
              "retrocardiac": (0.60, 1.0), "cardiophrenic": (0.72, 1.0), "costophrenic": (0.72, 1.0),
              "dome": (0.70, 1.0), "apicolateral": (0.0, 0.35), "axillary": (0.12, 0.50), "lateral": (0.25, 0.75)}
DIAPHRAGM_MARGIN = 0.015  # intrathoracic compartments end this fraction of the lung height above the dome line
BAND_SOFTNESS = 0.06  # lobes overlap on a PA film: band edges fade over this fraction of the lung height
INTRATHORACIC = ("airspace", "nodule", "lucent", "diffuse", "effusion", "pneumothorax", "cardiac", "mediastinal")


@dataclass
class Compartment:
    """A finding's compartment on the anatomy grid: weight (h, w) float32 in [0, 1] (shape × density profile)."""

    weight: np.ndarray
    name: str
    details: dict[str, Any] = field(default_factory=dict)
    gated: bool = True  # False: no compartment, the footprint alone

    def describe(self) -> dict[str, Any]:
        return {"compartment": self.name, "gated": self.gated, **self.details}


def level_value(table: dict[float, float], level: float) -> float:
    """Linear interpolation of a severity table at `level` (held flat beyond its ends)."""
    keys = sorted(table)
    return float(np.interp(level, keys, [table[k] for k in keys]))


def pixel_cm(anatomy: FilmAnatomy, pixel_spacing_mm: float | None) -> tuple[float, str]:
    """Centimetres per grid pixel and how that was known: PixelSpacing, else the lung-pair width as PAIR_WIDTH_CM."""
    width, _ = anatomy.standard_size
    grid_w, _ = anatomy.grid_size
    if pixel_spacing_mm:
        return pixel_spacing_mm / 10.0 * width / grid_w, f"PixelSpacing {pixel_spacing_mm:g} mm"
    if anatomy.pair_width > 0:
        return PAIR_WIDTH_CM / anatomy.pair_width, f"no PixelSpacing: the lung fields taken as {PAIR_WIDTH_CM:g} cm wide"
    return 40.0 / grid_w, "no PixelSpacing and no lung fields: the film taken as 40 cm wide"


def compartment(anatomy: FilmAnatomy, finding: Finding, point: tuple[float, float],
                pixel_spacing_mm: float | None = None) -> Compartment:
    """The compartment of `finding` for a point at grid coordinates (x, y) (FilmAnatomy.to_grid)."""
    if finding.kind not in INTRATHORACIC:
        return _ungated(anatomy, f"{finding.kind}: no compartment (the edit region alone)")
    if not anatomy.found:
        return _ungated(anatomy, "no chest anatomy found on this film: the edit region alone")
    side = finding.side or _nearest_side(anatomy, point)
    builders = {"airspace": _lung_band, "diffuse": _lung_band, "lucent": _lung_band, "nodule": _nodule,
                "effusion": _effusion, "pneumothorax": _pneumothorax, "cardiac": _cardiac,
                "mediastinal": _mediastinal}
    if finding.kind == "lucent" and finding.size_cm:  # a bulla or cavity of a written size: round
        built = _nodule(anatomy, finding, side, point, pixel_spacing_mm)
    else:
        built = builders[finding.kind](anatomy, finding, side, point, pixel_spacing_mm)
    built.weight = (_soft(built.weight) * _intrathoracic(anatomy)).astype(np.float32)
    return built


def centre(compartment_weight: np.ndarray) -> tuple[float, float] | None:
    """Weighted centroid (x, y) of a compartment on the grid, snapped to its nearest pixel of weight ≥ ½ its max."""
    total = float(compartment_weight.sum())
    if total <= 0:
        return None
    ys, xs = np.mgrid[: compartment_weight.shape[0], : compartment_weight.shape[1]]
    cx, cy = float((xs * compartment_weight).sum() / total), float((ys * compartment_weight).sum() / total)
    rows, cols = np.nonzero(compartment_weight >= 0.5 * compartment_weight.max())
    k = int(np.argmin((cols - cx) ** 2 + (rows - cy) ** 2))
    return float(cols[k]), float(rows[k])


# ---------------------------------------------------------------- compartments


def _soft(weight: np.ndarray) -> np.ndarray:
    """Edges a grid pixel soft, so the film-resolution region has no grid staircase."""
    import cv2

    return cv2.GaussianBlur(np.asarray(weight, np.float32), (0, 0), 1.0)


def _ungated(anatomy: FilmAnatomy, why: str) -> Compartment:
    w, h = anatomy.grid_size
    return Compartment(np.ones((h, w), np.float32), "none", {"note": why}, gated=False)


def _intrathoracic(anatomy: FilmAnatomy) -> np.ndarray:
    """(h, w): 1 inside the thoracic cavity, fading to 0 over 2 grid px outside it; 0 below the diaphragm."""
    import cv2

    cavity = np.maximum(anatomy.thorax, np.maximum(anatomy.lungs[0], anatomy.lungs[1]))
    cavity = cv2.GaussianBlur(np.clip(cavity * 2.0 - 0.5, 0, 1).astype(np.float32), (0, 0), 0.8)
    rows = np.flatnonzero((anatomy.lungs > 0.5).any(axis=(0, 2)))
    margin = DIAPHRAGM_MARGIN * (rows[-1] - rows[0] + 1) if len(rows) else 0.0
    line = anatomy.diaphragm[None, :] - margin  # (1, w)
    above = np.clip(line - np.arange(cavity.shape[0], dtype=np.float32)[:, None] + 0.5, 0.0, 1.0)  # (h, w)
    return cavity * above


def _nearest_side(anatomy: FilmAnatomy, point: tuple[float, float]) -> str:
    """The patient side whose lung field is nearest the point (grid coordinates)."""
    distances = []
    for side in PATIENT_SIDES:
        ys, xs = np.nonzero(anatomy.lung(side) > 0.5)
        distances.append(np.min((xs - point[0]) ** 2 + (ys - point[1]) ** 2) if len(xs) else np.inf)
    return PATIENT_SIDES[int(np.argmin(distances))]


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask > 0.5)
    if not len(xs):
        raise ValueError("the anatomy has an empty lung field")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _lateral_high_x(side: str) -> bool:
    return side == "left"  # standard display: the patient's left lung is the image-right lung


def _band(shape: tuple[int, int], y0: float, y1: float, softness: float) -> np.ndarray:
    """(h, 1) rows inside [y0, y1] with linear ramps of `softness` rows at both ends."""
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    soft = max(softness, 1e-3)
    return np.clip(np.minimum((rows - y0) / soft + 0.5, (y1 - rows) / soft + 0.5), 0.0, 1.0)


def _lung_band(anatomy: FilmAnatomy, finding: Finding, side: str, point, spacing) -> Compartment:
    lung = anatomy.lung(side)
    x0, y0, x1, y1 = _extent(lung)
    height = y1 - y0
    table, key = (LOBE_BANDS, finding.zone) if finding.lobe else (ZONE_BANDS, finding.zone)
    if finding.kind == "diffuse" or key not in table:
        return Compartment(lung.copy(), f"{side} lung field", {"side": side})
    top, bottom = table[key]
    weight = lung * _band(lung.shape, y0 + top * height, y0 + bottom * height, BAND_SOFTNESS * height)
    if finding.lobe and key == "middle" or key in ("perihilar", "suprahilar", "infrahilar", "retrocardiac",
                                                     "cardiophrenic"):
        cols = np.arange(lung.shape[1], dtype=np.float32)[None, :]
        medial = (x0 + 0.25 * (x1 - x0)) if not _lateral_high_x(side) else (x1 - 0.25 * (x1 - x0))
        ramp = (cols - medial) / (0.1 * (x1 - x0))
        weight = weight * np.clip(0.5 + (ramp if not _lateral_high_x(side) else -ramp), 0, 1)  # the medial part
    elif key in ("costophrenic", "apicolateral", "axillary", "lateral"):
        cols = np.arange(lung.shape[1], dtype=np.float32)[None, :]
        middle = (x0 + x1) / 2
        ramp = (cols - middle) / (0.1 * (x1 - x0))
        weight = weight * np.clip(0.5 + (ramp if _lateral_high_x(side) else -ramp), 0, 1)  # the lateral part
    what = f"{side} {key} lobe projection" if finding.lobe else f"{side} {key} zone"
    return Compartment(weight.astype(np.float32), what, {"side": side, "rows_of_lung_height": [top, bottom]})


def _nodule(anatomy: FilmAnatomy, finding: Finding, side: str, point, spacing) -> Compartment:
    import cv2

    cm, how = pixel_cm(anatomy, spacing)
    if finding.size_cm:
        diameter, said = finding.size_cm, f"{finding.size_cm:g} cm as written"
    else:
        is_mass = any(word in finding.words.lower().split() for word in MASS_WORDS)
        base = MASS_CM if is_mass else NODULE_CM
        factor = float(np.interp(finding.level, [0.5, 1.0, 2.0, 3.0, 3.5], [0.5, 0.6, 1.0, 1.5, 1.8]))
        diameter = base * factor
        said = f"no size written: {'mass' if is_mass else 'nodule'} default {base:g} cm × {factor:g} (severity)"
    radius = max(1.0, diameter / 2 / cm)  # grid px
    h, w = anatomy.thorax.shape
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    distance = np.hypot(xs - point[0], ys - point[1])
    disc = np.sqrt(np.clip(1.0 - (distance / radius) ** 2, 0.0, 1.0))  # a sphere's projected thickness (its chord)
    grow = int(np.ceil(radius))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    lung = cv2.dilate((anatomy.lung(side) > 0.5).astype(np.uint8), kernel).astype(np.float32)
    return Compartment((disc * lung).astype(np.float32), f"round {diameter:.1f} cm opacity in the {side} lung "
                       "(a sphere's projected thickness)",
                       {"side": side, "diameter_cm": round(diameter, 2), "size": said, "scale": how,
                        "radius_grid_px": round(radius, 2)})


def _effusion(anatomy: FilmAnatomy, finding: Finding, side: str, point, spacing) -> Compartment:
    lung = anatomy.lung(side)
    x0, y0, x1, y1 = _extent(lung)
    height, width = y1 - y0, x1 - x0
    fraction = level_value(EFFUSION_HEIGHT, finding.level)
    depth = fraction * height  # grid rows above the lowest point of the recess
    cols = np.arange(lung.shape[1], dtype=np.float32)[None, :]
    lateral = np.clip((cols - x0) / width if _lateral_high_x(side) else (x1 - cols) / width, 0, 1)  # (1, w)
    meniscus = (y1 - depth) - EFFUSION_RISE * depth * lateral ** 2  # (1, w) row of the fluid's upper border
    rows = np.arange(lung.shape[0], dtype=np.float32)[:, None]
    below = np.clip((rows - meniscus) / max(1.0, 0.04 * height) + 0.5, 0.0, 1.0)  # (h, w)
    denser_down = np.clip(0.55 + 0.45 * (rows - meniscus) / max(depth, 1.0), 0.55, 1.0)
    recess = np.maximum(lung, anatomy.recesses[PATIENT_SIDES.index(side)])
    lateral_part = np.clip((lateral - EFFUSION_MEDIAL_EDGE) / 0.25, 0.0, 1.0)  # fluid layers laterally, not behind the heart
    weight = (recess * below * denser_down * lateral_part).astype(np.float32)
    return Compartment(weight, f"{side} dependent pleural space below a meniscus",
                       {"side": side, "height_of_lung": round(fraction, 3), "meniscus_rise": EFFUSION_RISE})


def _pneumothorax(anatomy: FilmAnatomy, finding: Finding, side: str, point, spacing) -> Compartment:
    import cv2

    lung = anatomy.lung(side) > 0.5
    x0, y0, x1, y1 = _extent(lung)
    height = y1 - y0
    rim = level_value(PNEUMOTHORAX_RIM, finding.level) * max(anatomy.pair_width, 1.0)
    extent = level_value(PNEUMOTHORAX_EXTENT, finding.level) * height
    medial_side = np.zeros_like(lung)  # the mediastinum and the other lung count as lung: no rim there
    other = anatomy.lung(PATIENT_SIDES[1 - PATIENT_SIDES.index(side)]) > 0.5
    medial_side |= other | (anatomy.mediastinum > 0.5)
    mid = (x0 + x1) // 2
    if _lateral_high_x(side):
        medial_side[:, :mid] |= True
    else:
        medial_side[:, mid:] |= True
    medial_side[:y0] = False
    distance = cv2.distanceTransform((lung | (medial_side & (np.arange(lung.shape[0])[:, None] >= y0)))
                                     .astype(np.uint8), cv2.DIST_L2, 3)
    below_apex = np.clip((np.arange(lung.shape[0], dtype=np.float32)[:, None] - y0) / max(extent, 1.0), 0, 1)
    width = rim * (1.0 - below_apex ** 2)  # (h, 1) rim width, tapering to nothing at `extent` below the apex
    weight = lung * np.clip((width - distance) / 1.0 + 0.5, 0.0, 1.0) * (width > 0.3)
    return Compartment(weight.astype(np.float32), f"{side} apicolateral pleural rim",
                       {"side": side, "rim_of_pair_width": level_value(PNEUMOTHORAX_RIM, finding.level),
                        "extent_of_lung_height": level_value(PNEUMOTHORAX_EXTENT, finding.level)})


def _cardiac(anatomy: FilmAnatomy, finding: Finding, side, point, spacing) -> Compartment:
    import cv2

    growth = level_value(CARDIAC_GROWTH, finding.level) * max(anatomy.pair_width, 1.0)
    gx, gy = max(1, int(round(growth))), max(1, int(round(0.5 * growth)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gx + 1, 2 * gy + 1))
    heart = (anatomy.heart > 0.5).astype(np.uint8)
    band = (cv2.dilate(heart, kernel) > 0) & (heart == 0)
    rows = np.flatnonzero(heart.any(axis=1))
    if len(rows):  # the heart mask's top is a cut through the mediastinum, not a border: no band above it
        band[: rows[0]] = False
    weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), 0.8)
    return Compartment(weight, "band outside the heart borders",
                       {"growth_of_pair_width": level_value(CARDIAC_GROWTH, finding.level)})


def _mediastinal(anatomy: FilmAnatomy, finding: Finding, side, point, spacing) -> Compartment:
    import cv2

    growth = level_value(CARDIAC_GROWTH, finding.level) * max(anatomy.pair_width, 1.0)
    g = max(1, int(round(growth)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 3))
    upper = (anatomy.mediastinum > 0.5) & (anatomy.heart < 0.5)
    band = (cv2.dilate(upper.astype(np.uint8), kernel) > 0) & ~upper
    weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), 0.8)
    return Compartment(weight, "band outside the upper mediastinum",
                       {"growth_of_pair_width": level_value(CARDIAC_GROWTH, finding.level)})


# ---------------------------------------------------------------- how dense, and what drives the shape

DENSITY = {  # opacity (or lucency) fraction at full strength, by kind and severity level
    "airspace": {0.5: 0.35, 1.0: 0.5, 2.0: 0.68, 3.0: 0.82, 3.5: 0.88},
    "diffuse": {0.5: 0.2, 1.0: 0.3, 2.0: 0.42, 3.0: 0.55, 3.5: 0.62},
    "nodule": {0.5: 0.8, 3.5: 0.8},
    "lucent": {0.5: 0.4, 1.0: 0.5, 2.0: 0.65, 3.0: 0.8, 3.5: 0.85},
    "effusion": {0.5: 0.9, 3.5: 0.9},
    "pneumothorax": {0.5: 0.92, 3.5: 0.92},
    "cardiac": {0.5: 0.9, 3.5: 0.9},
    "mediastinal": {0.5: 0.85, 3.5: 0.85},
    "other": {0.5: 0.5, 3.5: 0.5},
}
SHAPED = ("nodule", "effusion", "pneumothorax", "cardiac", "mediastinal")  # the compartment is the shape
LUCENT = ("pneumothorax", "lucent")  # present = air; absent = aerated lung (opaque findings: present = soft tissue)


def density(finding: Finding) -> float:
    """The finding's opacity fraction at full strength (DENSITY by kind, interpolated over the severity level)."""
    return level_value(DENSITY.get(finding.kind, DENSITY["other"]), finding.level)


def shaped(finding: Finding, compartment_: Compartment) -> bool:
    """True when the compartment gives the finding its shape (the engine's change then only sets its strength)."""
    return compartment_.gated and (finding.kind in SHAPED or compartment_.name.startswith("round"))
