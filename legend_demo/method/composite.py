"""The follow-up as a film: only the engine's change, rendered as a finding in the patient's anatomy, on the
patient's own film at its own resolution (DESIGN "What the user gets back is their film" and "A change is a finding
in the patient's anatomy").

For each lesion point k:
- the finding (legend_demo.method.findings): kind, side, zone, severity level and size, from its label or the text;
- its compartment C_k on the film's anatomy (legend_demo.method.finding_region, method/film_anatomy.py);
- its region W_k = footprint_k · C_k (footprint: legend_demo.method.edit_region around the point, the Gaussian prior's σ);
- its strength s_k ∈ [−1, 1]: the engine's change c = resample(edit − source) over CHANGE_FOR_FULL_DENSITY (or the
  kind's own, full_density_change), per
  pixel for findings whose shape the engine draws (consolidation, …), the W_k-weighted mean for findings whose
  shape is anatomical (effusion, pneumothorax, nodule of a given size, cardiomegaly);
- its opacity fraction f_k = W_k · density_k · s_k (density_k from kind and severity).
Per pixel the point with the largest |f_k| wins; legend_demo.method.opacity renders f in the film's attenuation domain
(stored units: towards the film's own soft tissue, aerated lung or air, vessels fading inside an opacity, never
brighter than its dense soft tissue, never at the ends of its stored range) and the result is written back in the
film's stored units. Outside W = max_k W_k the output is the prior's stored pixels, bit for bit. A "model view"
film (for researchers reproducing the thesis) is instead the raw edit row resampled onto the whole film grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .edit_region import EditRegion, region_box, region_weights
from ..core.geometry import SquareFrame
from ..core.intensity import AttenuationScale
from ..core.points import LesionPoint

DISPLAY_STEP = 1.0 / 65535  # films without stored values: changed pixels stay this far inside [0, 1]
CHANGE_FOR_FULL_DENSITY = 0.10  # display units at the model view: an engine change this large = the full density
SYNTHETIC_CHANGE_BY_KIND = {"airspace": 0.143, "nodule": 0.076, "cardiac": 0.053}  # the synthetic pairs' own mean
# change inside the lesion mask by kind (real follow-ups of 80 held-out test pairs, assets/embedded/training/
# eval_test80.json: consolidation 0.143, nodule 0.076, cardiomegaly 0.053). The engine learnt these kinds at these
# amplitudes, so a kind drawn at a fraction of a consolidation's change is that kind at full density:
FULL_DENSITY_CHANGE_BY_KIND = {kind: round(CHANGE_FOR_FULL_DENSITY * amplitude / SYNTHETIC_CHANGE_BY_KIND["airspace"], 3)
                               for kind, amplitude in SYNTHETIC_CHANGE_BY_KIND.items() if kind != "airspace"}


def full_density_change(kind: str) -> float:
    """The engine's change (display units at the model view) that means a finding of `kind` at full density."""
    return FULL_DENSITY_CHANGE_BY_KIND.get(kind, CHANGE_FOR_FULL_DENSITY)
OPACITY_MODEL = ("opacity fraction f = W · density(kind, severity) · clip(engine change / c_kind, −1, 1) (c_kind "
                 f"{CHANGE_FOR_FULL_DENSITY:g}, or change_for_full_density_by_kind) in the film's attenuation (stored, "
                 "log) domain: a' = a + f·(target − G_σb a) − κ·√f·(fine texture); targets from this film: soft tissue T (heart, "
                 "mediastinum), aerated lung, air; brighter values knee into the ceiling C (dense soft tissue)")

OutputMode = Literal["composite", "model-view"]
OUTPUT_MODES = ("composite", "model-view")


@dataclass(eq=False)
class Film:
    """A SYNTHETIC follow-up on the prior film's own pixel grid.

    display: (H, W) float32 in [0, 1], shown like the prior; stored: (H, W) in the prior's stored dtype and units
    (None when the prior had no integer stored values); box/weights: W's bounding box (x0, y0, x1, y1) on the
    film and W inside it (None in model-view mode or without points).
    """

    display: np.ndarray
    stored: np.ndarray | None
    mode: OutputMode
    box: tuple[int, int, int, int] | None = None
    weights: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.display.shape[1], self.display.shape[0]

    def region_mask(self) -> np.ndarray:
        """W on the whole film grid (H, W) float32 (zeros in model-view mode)."""
        mask = np.zeros(self.display.shape, dtype=np.float32)
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            mask[y0:y1, x0:x1] = self.weights
        return mask


def film_sigma_px(frame: SquareFrame, sigma_ratio: float) -> float:
    """The Gaussian prior's σ in film pixels: ratio·min(h, w) cells = ratio·side model px = ratio·square film px."""
    return sigma_ratio * frame.square


def composite_change(
    prior,
    source_view: np.ndarray,
    edit_view: np.ndarray,
    frame: SquareFrame,
    points: list[LesionPoint],
    sigma_ratio: float,
    region: EditRegion,
    smoothing_px: float = 0.0,
    text: str = "",
) -> Film:
    """Render the engine's change (edit − source) as findings on the prior film (a LoadedImage) inside W; the prior
    elsewhere, bit for bit. `text` is the progression description (read for points without a label).

    smoothing_px > 0 low-passes the change at the model view first (a Gaussian of that σ in model pixels), for
    engines whose per-token output leaves block edges in the change (Engine.change_smoothing_px).
    """
    from .film_anatomy import film_anatomy

    if source_view.shape != edit_view.shape:
        raise ValueError(f"source row {source_view.shape} and edit row {edit_view.shape} differ in shape")
    delta = model_view_change(source_view, edit_view, smoothing_px)  # (side, side)
    display = np.array(prior.array, dtype=np.float32, copy=True)  # (H, W)
    stored = None if prior.stored is None else prior.stored.copy()
    sigma_px = film_sigma_px(frame, sigma_ratio)
    params = {"mode": "composite", "sigma_ratio": sigma_ratio, "sigma_film_px": round(sigma_px, 2),
              **region.to_dict(), "change_smoothing_model_px": smoothing_px}
    box = region_box(points, prior.size, sigma_px, region.scale)
    if box is None:
        return Film(display, stored, "composite", params={**params, "note": "no lesion points: the follow-up is the prior"})
    anatomy = film_anatomy(prior)
    change = frame.sample_model_view(delta, box)  # (h_b, w_b) display units
    rendering = render_findings(prior, anatomy, points, text, change, box, sigma_px, region.scale)
    x0, y0, x1, y1 = box
    if stored is None:
        inside = np.clip(rendering.attenuation, DISPLAY_STEP, 1.0 - DISPLAY_STEP)  # never exactly black or white
        display[y0:y1, x0:x1] = np.where(rendering.fraction != 0, inside, display[y0:y1, x0:x1])
    else:
        _write_stored(prior, rendering, stored[y0:y1, x0:x1], display[y0:y1, x0:x1])
    params.update(rendering.params)
    return Film(display, stored, "composite", box, rendering.weights, params)


@dataclass
class Rendering:
    """The findings rendered in one box: attenuation (h_b, w_b) after, fraction f, region W, report params."""

    attenuation: np.ndarray
    fraction: np.ndarray
    weights: np.ndarray
    scale: AttenuationScale
    params: dict[str, Any]


def render_findings(prior, anatomy, points: list[LesionPoint], text: str, change: np.ndarray,
                    box: tuple[int, int, int, int], sigma_px: float, region_scale: float) -> Rendering:
    """Every point's finding, compartment, region, strength and opacity in `box`, then the opacity model."""
    from .finding_region import LUCENT, compartment, density, shaped
    from .findings import finding_of
    from .opacity import TEXTURE_FADE, film_densities, film_sigmas, render_opacity

    scale = AttenuationScale.of(prior.intensity_map())
    x0, y0, x1, y1 = box
    a = scale.to_attenuation(prior.array[y0:y1, x0:x1] if prior.stored is None else prior.stored[y0:y1, x0:x1])
    densities = film_densities(_attenuation_grid(prior, anatomy, scale), anatomy)
    spacing = pixel_spacing_mm(prior)
    fractions, lucent, reports = [], [], []
    weights = np.zeros(change.shape, np.float32)
    for point in points:
        finding = finding_of(point, text, _side_width(prior, anatomy))
        room = compartment(anatomy, finding, anatomy.to_grid(point.x, point.y), spacing)
        footprint = region_weights([point], box, sigma_px, region_scale)  # (h_b, w_b)
        w_k = footprint * anatomy.sample(room.weight, box)  # (h_b, w_b)
        weights = np.maximum(weights, w_k)
        full = full_density_change(finding.kind)
        raw = np.clip(change / full, -1.0, 1.0)  # (h_b, w_b)
        mean = float((change * w_k).sum() / max(float(w_k.sum()), 1e-6))
        if shaped(finding, room):
            strength = np.float32(np.clip(mean / full, -1.0, 1.0))
            how = f"shape from the anatomy; strength {float(strength):+.2f} from the engine's mean change {mean:+.4f}"
        else:
            strength = raw
            how = "shape and strength from the engine's change, inside the compartment"
        fractions.append(w_k * density(finding) * strength)
        lucent.append(finding.kind in LUCENT)
        agreement = (OUTSIDE_COMPARTMENT.format(room=room.name) if float(w_k.max(initial=0.0)) < EMPTY_REGION
                     else engine_agreement(finding, mean))
        if agreement:
            how += f"; {agreement}"
        reports.append({"point": [round(point.x, 1), round(point.y, 1)], "read": finding.describe(),
                        **({"engine_disagrees": agreement, "what": finding.name()} if agreement else {}),
                        "finding": finding.to_dict(), **room.describe(), "density": round(density(finding), 3),
                        "drawn": how, "region_px": int((w_k > 0).sum())})
    stack = np.stack(fractions)  # (K, h_b, w_b)
    winner = np.argmax(np.abs(stack), axis=0)  # (h_b, w_b)
    fraction = np.take_along_axis(stack, winner[None], axis=0)[0]
    is_lucent = np.array(lucent)[winner]  # (h_b, w_b)
    soft = anatomy.sample(np.repeat(densities.soft_tissue[:, None], anatomy.grid_size[0], axis=1), box)
    lung = anatomy.sample(np.repeat(densities.lung[:, None], anatomy.grid_size[0], axis=1), box)
    air = np.full(a.shape, densities.air, np.float32)
    up = fraction > 0
    target = np.where(is_lucent, np.where(up, lung, air), np.where(up, soft, lung))
    fade = np.where(up != is_lucent, TEXTURE_FADE, 0.0).astype(np.float32)  # into soft tissue or air: no markings
    sigmas = film_sigmas(anatomy)
    after = render_opacity(a, fraction.astype(np.float32), target.astype(np.float32), fade, densities.ceiling,
                           np.minimum(a, air), sigmas)
    params = {"anatomy": anatomy.describe(), "findings": reports,
              "opacity_model": {"model": OPACITY_MODEL, "change_for_full_density": CHANGE_FOR_FULL_DENSITY,
                                "change_for_full_density_by_kind": FULL_DENSITY_CHANGE_BY_KIND,
                                "texture_fade": TEXTURE_FADE, "sigmas_film_px": {k: round(v, 2) for k, v in sigmas.items()},
                                "domain": "stored values (attenuation)" if prior.stored is not None else "display values",
                                **densities.describe()}}
    return Rendering(after, fraction.astype(np.float32), weights, scale, params)


EMPTY_REGION = 0.05  # a point whose footprint reaches its compartment with less weight than this draws nothing
OUTSIDE_COMPARTMENT = ("its point lies outside where this finding can be ({room}): nothing is drawn; move the point "
                       "into that region")
FAINT_CHANGE = 0.005  # display units at the model view: a mean engine change below this is "almost nothing"


def engine_agreement(finding, mean_change: float) -> str:
    """A note when the engine's mean change in a finding's region is almost nothing, or opposite to the text's
    direction (new / worse: opacity, or lucency for a pneumothorax; better / resolved: the reverse); '' otherwise.
    The film follows the engine's change either way: nothing is drawn that the engine did not draw."""
    from .finding_region import LUCENT

    expected = {"new": 1, "worse": 1, "better": -1, "resolved": -1}.get(finding.change or "", 0)
    expected *= -1 if finding.kind in LUCENT else 1
    if expected == 0:
        return ""
    if abs(mean_change) < FAINT_CHANGE:
        return f"the engine drew almost nothing here (mean change {mean_change:+.4f}), so almost nothing is drawn"
    if mean_change * expected < 0:
        wanted = "lucency" if expected < 0 else "opacity"
        return (f"the engine drew the opposite of the described change here (mean change {mean_change:+.4f}, the text "
                f"asks for {wanted}); the film follows the engine")
    return ""


def drawing_warnings(params: dict[str, Any]) -> list[str]:
    """One message per finding the engine drew almost nothing of, or the opposite of (from a film's params)."""
    return [f"the engine did not draw the {f['what']} as described: {f['engine_disagrees']}"
            for f in params.get("findings", []) if f.get("engine_disagrees")]


def pixel_spacing_mm(prior) -> float | None:
    """The film's pixel size in mm from PixelSpacing (else ImagerPixelSpacing); None when absent or zero."""
    display = getattr(prior, "dicom_display", None) or {}
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = display.get(key)
        try:
            first = float(value[0] if isinstance(value, (list, tuple)) else str(value).split("\\")[0])
        except (TypeError, ValueError, IndexError):
            continue
        if 0.01 <= first <= 5.0:
            return first
    return None


def _side_width(prior, anatomy) -> float | None:
    """Image width for reading a point's side from its x (standard display only; None on a turned or mirrored
    film, where the text's first finding is taken)."""
    return float(prior.size[0]) if anatomy.orientation.is_standard else None


def _attenuation_grid(prior, anatomy, scale: AttenuationScale) -> np.ndarray:
    """The film's attenuation on the anatomy grid (standard display), (h, w) float32."""
    import cv2

    values = prior.array if prior.stored is None else prior.stored
    height, width = values.shape
    step = max(1, int(max(height, width) // (2 * max(anatomy.grid_size))))
    small = scale.to_attenuation(values[::step, ::step])
    standard = anatomy.orientation.to_standard(small)
    return cv2.resize(standard, anatomy.grid_size, interpolation=cv2.INTER_AREA)


def model_view_change(source_view: np.ndarray, edit_view: np.ndarray, smoothing_px: float = 0.0) -> np.ndarray:
    """edit − source at the model view, low-passed by a Gaussian of σ = smoothing_px model pixels when > 0."""
    if not (smoothing_px >= 0 and np.isfinite(smoothing_px)):
        raise ValueError(f"smoothing_px={smoothing_px} must be a finite number ≥ 0")
    delta = np.asarray(edit_view, dtype=np.float32) - np.asarray(source_view, dtype=np.float32)  # (side, side)
    if smoothing_px == 0:
        return delta
    import cv2

    return cv2.GaussianBlur(delta, (0, 0), smoothing_px, borderType=cv2.BORDER_REPLICATE)


def model_view_film(prior, edit_view: np.ndarray, frame: SquareFrame) -> Film:
    """The raw edit row resampled onto the whole film grid (no compositing), in display and stored units."""
    width, height = prior.size
    display = np.clip(frame.sample_model_view(edit_view, (0, 0, width, height)), 0.0, 1.0).astype(np.float32)
    stored = None
    if prior.stored is not None:
        stored = prior.intensity_map().to_stored(display, prior.stored.dtype)
    return Film(display, stored, "model-view", params={"mode": "model-view", "note": "raw engine output, upsampled"})


def _write_stored(prior, rendering: Rendering, stored_box: np.ndarray, display_box: np.ndarray) -> None:
    """Write the rendered attenuation into the stored box where f ≠ 0 and it changes a stored value, strictly inside
    the stored range present in the film (nothing new at its ends), then show it as the film would."""
    scale = rendering.scale
    values = np.round(scale.to_stored(rendering.attenuation))  # (h_b, w_b) float64
    changed = (rendering.fraction != 0) & (values != stored_box)
    if not changed.any():
        return
    if scale.high - scale.low > 2:
        values = np.clip(values, scale.low + 1, scale.high - 1)
    stored_box[changed] = values[changed].astype(stored_box.dtype)
    display_box[changed] = prior.intensity_map().to_display(stored_box[changed])
