"""Render one synthetic longitudinal pair: one "patient" (pose, habitus, technique), a reference and a follow-up.

The two views share anatomy, tilt, pose and beam hardness; the follow-up has slightly different exposure and
display settings, fresh noise and a sub-pixel repositioning shift (as a registered real follow-up would). The
lesion mask and points are in the reference frame (within `flu_shift_px` of the follow-up frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .attenuation import combine_channels
from .changes import ChangeSpec
from .drr import DRRRenderer, Exposure, expose, follow_up_exposure, sample_exposure
from .framing import FieldOfView, Pose, resample, sample_pose, sampling_maps
from .lesions import Lesion, bounding_box, make_lesion
from .projection import Tilt

TILT_BANK = tuple(Tilt(yaw, pitch) for yaw in (-4.0, -2.0, 0.0, 2.0, 4.0) for pitch in (-3.0, 0.0, 3.0))
MASK_MIN_PATH_MM = 1.5  # a pixel is in the 2D mask when its ray crosses ≥ this much changed tissue


@dataclass(frozen=True)
class Patient:
    """Everything that makes one rendered "patient" differ from another drawn from the same CT."""

    tilt: Tilt
    bone_gain: float
    pose: Pose
    exposure: Exposure


@dataclass
class RenderedPair:
    reference: np.ndarray  # (S, S) float32 in [0, 1]
    follow_up: np.ndarray  # (S, S) float32 in [0, 1]
    mask: np.ndarray  # (S, S) bool, projection of the 3D change region
    points: list[dict]
    change: ChangeSpec
    lesion: Lesion
    patient: Patient
    follow_up_exposure: Exposure
    follow_up_shift_px: tuple[float, float]
    noise_seeds: tuple[int | None, int | None]
    maps: tuple  # (reference, follow-up) sampling maps, each (map_x, map_y) of (S, S)


def sample_patient(rng: np.random.Generator, jitter: bool = True) -> Patient:
    """Random tilt (from the precomputed bank), beam hardness, pose and technique; jitter=False → canonical."""
    if not jitter:
        return Patient(Tilt(), 1.6, Pose(), Exposure())
    tilt = TILT_BANK[rng.integers(len(TILT_BANK))]
    return Patient(tilt, float(rng.uniform(1.3, 2.0)), sample_pose(rng), sample_exposure(rng))


def lesion_points(mask: np.ndarray, kind: str, max_points: int = 3) -> list[dict]:
    """Centroids {x, y, confidence} of the mask's main components (cardiomegaly: one, the cardiac centre)."""
    if not mask.any():
        return []
    if kind == "cardiomegaly":
        ys, xs = np.nonzero(mask)
        return [{"x": int(round(xs.mean())), "y": int(round(ys.mean())), "confidence": 5}]
    components, count = ndimage.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(components.ravel())[1:]  # (count,)
    keep = [i for i in np.argsort(-areas)[:max_points] if areas[i] >= max(4, 0.05 * areas.sum())]
    centres = ndimage.center_of_mass(mask, components, [i + 1 for i in keep])
    return [{"x": int(round(x)), "y": int(round(y)), "confidence": 5} for y, x in centres]


def _changed_region(lesion: Lesion, change: ChangeSpec, hu_ref: np.ndarray, hu_flu: np.ndarray) -> np.ndarray:
    """(h, w, d) bool: where reference and follow-up HU differ (for 'unchanged', the persisting lesion)."""
    if change.direction == "unchanged":
        return lesion.weights(change.level_ref) > 0
    return hu_ref != hu_flu


def render_view(renderer: DRRRenderer, patient: Patient, delta: np.ndarray | None,
                maps: tuple[np.ndarray, np.ndarray], exposure: Exposure, noise_seed: int | None) -> np.ndarray:
    """Anatomy (+ optional (2, Y, X) lesion delta) at the patient's tilt → exposed (S, S) image."""
    channels = renderer.anatomy(patient.tilt) if delta is None else renderer.anatomy(patient.tilt) + delta
    line_integral = resample(combine_channels(channels, patient.bone_gain), maps)  # (S, S)
    noise = None if noise_seed is None else np.random.default_rng(noise_seed)
    return expose(line_integral, exposure, noise).astype(np.float32)


def render_pair(renderer: DRRRenderer, fov: FieldOfView, change: ChangeSpec, rng: np.random.Generator,
                size: int = 256, flu_shift_px: float = 0.5, jitter: bool = True, noise: bool = True
                ) -> RenderedPair:
    """Draw the patient and lesion shape from rng, edit the CT box, project, expose both views.

    jitter=False: canonical patient and identical technique for both views; noise=False: noise-free views.
    """
    patient = sample_patient(rng, jitter)
    lesion = make_lesion(change.kind, renderer.volume, change.side, change.lobe, rng)
    hu_lesion_box = renderer.volume.hu[lesion.box]
    edited = [lesion.apply(hu_lesion_box, level) for level in (change.level_ref, change.level_flu)]  # 2 × (h, w, d)
    changed = _changed_region(lesion, change, *edited)  # (h, w, d)
    present = (edited[0] != hu_lesion_box) | (edited[1] != hu_lesion_box) | changed
    if not present.any():
        raise ValueError(f"lesion {change} produced an empty region; the CT labels may be incomplete")
    origin = tuple(s.start for s in lesion.box)
    box = bounding_box(present, origin=origin)  # tight box, full-volume coordinates
    local = tuple(slice(b.start - o, b.stop - o) for b, o in zip(box, origin))
    hu_box = renderer.volume.hu[box]
    deltas = [renderer.edit_delta(box, hu_box, hu[local], patient.tilt) for hu in edited]  # 2 × (2, Y, X)
    path = renderer.path_length(changed[local], box, patient.tilt)  # (Y, X) mm
    shift = tuple(float(v) for v in rng.uniform(-flu_shift_px, flu_shift_px, 2)) if flu_shift_px else (0.0, 0.0)
    maps_ref = sampling_maps(fov, patient.pose, size)
    maps_flu = sampling_maps(fov, patient.pose, size, extra_shift_px=shift)
    exposure_flu = follow_up_exposure(patient.exposure, rng) if jitter else patient.exposure
    seeds = (int(rng.integers(2**62)), int(rng.integers(2**62)))
    noise_seeds = seeds if noise else (None, None)
    reference = render_view(renderer, patient, deltas[0], maps_ref, patient.exposure, noise_seeds[0])
    follow_up = render_view(renderer, patient, deltas[1], maps_flu, exposure_flu, noise_seeds[1])
    mask = resample(path, maps_ref) >= MASK_MIN_PATH_MM  # (S, S)
    return RenderedPair(reference, follow_up, mask, lesion_points(mask, change.kind), change, lesion, patient,
                        exposure_flu, shift, noise_seeds, (maps_ref, maps_flu))
