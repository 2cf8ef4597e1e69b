"""PA digitally reconstructed radiographs: line integrals of μ → detector exposure → displayed image in [0, 1].

Pipeline (per view): L = ∫μ ds (projection.py, attenuation.py) → photons I = N0·exp(−L) plus a smooth scatter
term → quantum noise (Gaussian approximation of Poisson, σ = √I) → detector blur (Gaussian PSF) →
log transform D = −ln(I / I_open) so dense tissue is BRIGHT and aerated lung DARK → clinical-style processing
(unsharp mask, window, gamma). Image row 0 = head end, column 0 = patient right (PA display convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .attenuation import attenuation_channels
from .projection import Tilt, project
from .volume import ChestVolume


@dataclass(frozen=True)
class Exposure:
    """Acquisition and display settings of one view (all randomised per patient, nudged per follow-up)."""

    photons: float = 3e4  # N0 per output pixel of open field
    scatter: float = 0.1  # scatter-to-primary ratio of the open field
    blur_px: float = 0.7  # detector PSF σ in output pixels
    unsharp: float = 0.5  # edge-enhancement gain
    window_low: float = 1.5  # ∫μ shown black
    window_high: float = 5.0  # ∫μ shown white
    gamma: float = 0.9


def sample_exposure(rng: np.random.Generator) -> Exposure:
    """Random exposure/contrast/gamma/noise for a new patient."""
    return Exposure(
        photons=float(math.exp(rng.uniform(math.log(8e3), math.log(1e5)))),
        scatter=float(rng.uniform(0.05, 0.2)),
        blur_px=float(rng.uniform(0.5, 1.0)),
        unsharp=float(rng.uniform(0.3, 0.9)),
        window_low=float(rng.uniform(1.2, 1.8)),
        window_high=float(rng.uniform(4.6, 5.4)),
        gamma=float(rng.uniform(0.75, 1.1)),
    )


def follow_up_exposure(reference: Exposure, rng: np.random.Generator, amount: float = 1.0) -> Exposure:
    """The same patient's follow-up: slightly different technique (window ±3 %, dose ±20 %, gamma ±4 %)."""
    span = reference.window_high - reference.window_low
    return replace(
        reference,
        photons=reference.photons * float(math.exp(amount * rng.uniform(-0.2, 0.2))),
        window_low=reference.window_low + amount * float(rng.uniform(-0.03, 0.03)) * span,
        window_high=reference.window_high + amount * float(rng.uniform(-0.03, 0.03)) * span,
        gamma=reference.gamma * float(math.exp(amount * rng.uniform(-0.04, 0.04))),
    )


def expose(line_integral: np.ndarray, exposure: Exposure, rng: np.random.Generator | None) -> np.ndarray:
    """(H, W) ∫μ on the output grid → (H, W) float32 display image in [0, 1]; rng=None renders noise-free."""
    if exposure.window_high <= exposure.window_low:
        raise ValueError(f"window_high {exposure.window_high} must exceed window_low {exposure.window_low}")
    size = min(line_integral.shape)
    primary = exposure.photons * np.exp(-line_integral.astype(np.float64))  # (H, W) photons
    scatter = exposure.scatter * _blur(primary, size / 8)  # (H, W)
    photons = primary + scatter
    if rng is not None:
        photons = photons + np.sqrt(photons) * rng.standard_normal(photons.shape)
    photons = _blur(np.maximum(photons, 1.0), exposure.blur_px)
    density = -np.log(photons / (exposure.photons * (1.0 + exposure.scatter)))  # (H, W) bright = dense
    smooth = _blur(density, size / 40)
    density = density + exposure.unsharp * (density - smooth)
    shown = (density - exposure.window_low) / (exposure.window_high - exposure.window_low)
    return np.clip(shown, 0.0, 1.0) ** exposure.gamma


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with replicated borders (OpenCV); wide kernels run on a downsampled copy."""
    factor = int(sigma // 3)
    if factor < 2:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    height, width = image.shape
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, sigmaY=sigma / factor,
                             borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


class DRRRenderer:
    """Projects a ChestVolume: anatomy once per tilt (memoised), lesion edits only over their bounding box."""

    def __init__(self, volume: ChestVolume):
        self.volume = volume
        self._anatomy: dict[Tilt, np.ndarray] = {}
        self._channels: np.ndarray | None = None

    @property
    def detector_shape(self) -> tuple[int, int]:
        return self.volume.shape[0], self.volume.shape[1]

    @property
    def depth_center(self) -> float:
        return (self.volume.shape[2] - 1) / 2

    def anatomy(self, tilt: Tilt) -> np.ndarray:
        """(2, Y, X) per-channel line integrals of the unchanged anatomy."""
        if tilt not in self._anatomy:
            if self._channels is None:
                self._channels = attenuation_channels(self.volume.hu)  # (2, Y, X, D)
            self._anatomy[tilt] = project(self._channels, self.volume.voxel_mm, tilt, border=True)
        return self._anatomy[tilt]

    def _footprint(self, box: tuple[slice, slice, slice], tilt: Tilt) -> tuple[int, int, int, int]:
        """Detector window (Y0, Y1, X0, X1) that rays through `box` can reach."""
        slope_y, slope_x = tilt.slopes
        reach = max(abs(box[2].start - self.depth_center), abs(box[2].stop - self.depth_center))
        margin_y, margin_x = int(math.ceil(abs(slope_y) * reach)) + 2, int(math.ceil(abs(slope_x) * reach)) + 2
        Y, X = self.detector_shape
        return (max(0, box[0].start - margin_y), min(Y, box[0].stop + margin_y),
                max(0, box[1].start - margin_x), min(X, box[1].stop + margin_x))

    def project_box(self, fields: np.ndarray, box: tuple[slice, slice, slice], tilt: Tilt) -> np.ndarray:
        """(C, h, w, d) fields living in `box` → (C, Y, X) full-detector line integrals (zero elsewhere)."""
        Y0, Y1, X0, X1 = window = self._footprint(box, tilt)
        partial = project(fields, self.volume.voxel_mm, tilt, origin=(box[0].start, box[1].start, box[2].start),
                          window=window, depth_center=self.depth_center)  # (C, Y1-Y0, X1-X0)
        full = np.zeros((fields.shape[0], *self.detector_shape))
        full[:, Y0:Y1, X0:X1] = partial
        return full

    def edit_delta(self, box: tuple[slice, slice, slice], hu_before: np.ndarray, hu_after: np.ndarray,
                   tilt: Tilt) -> np.ndarray:
        """(2, Y, X) change of the per-channel line integrals when `box` goes from hu_before to hu_after."""
        delta = attenuation_channels(hu_after) - attenuation_channels(hu_before)  # (2, h, w, d)
        return self.project_box(delta, box, tilt)

    def path_length(self, region: np.ndarray, box: tuple[slice, slice, slice], tilt: Tilt) -> np.ndarray:
        """(Y, X) length in mm of each ray inside the boolean region (h, w, d) placed at `box`."""
        return self.project_box(region[None].astype(np.float32), box, tilt)[0]
