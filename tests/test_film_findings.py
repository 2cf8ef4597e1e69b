"""A change is a finding in the patient's anatomy (issue 19): on a real film (RG1_UNCI.dcm, as DICOM and as an 8-bit
PNG export) and on synthetic films (the shipped example renders), whatever the engine draws:

- no pixel newly reaches an end of the stored range;
- inside a new opacity nothing is brighter than the film's own dense soft tissue;
- an intrathoracic finding's change stays above the hemidiaphragms and inside the chest walls (RG1: hand-traced
  lines, legend_demo/grounding/landmark_check.py; synthetic films: the film's anatomy);
- fine texture (vessels) fades in a dense new opacity's core;
- an effusion sits in the lower hemithorax and is larger when "large" than when "small";
- outside the edit region the film is untouched, and the report says how each finding was read and drawn.
The engine is replaced by a stand-in change (a bump at each point, strong enough to saturate), so the invariants are
checked for the rendering, not for one model's output.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legend_demo import load_image
from legend_demo.method.composite import composite_change
from legend_demo.method.edit_region import EditRegion
from legend_demo.evaluation import film_checks as fc
from legend_demo.grounding import ground
from legend_demo.method.film_anatomy import film_anatomy
from legend_demo.grounding.landmark_check import RG1_CHEST_WALL, RG1_DIAPHRAGM, RG1_LANDMARKS, rg1_exports
from legend_demo.core.intensity import AttenuationScale

pydicom_data = pytest.importorskip("pydicom.data")
RG1 = pydicom_data.get_testdata_file("RG1_UNCI.dcm")
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SYNTHETIC = sorted(EXAMPLES.glob("synthetic_*.png"))[:3]
RG1_LINES = {**{f"{s} diaphragm": RG1_DIAPHRAGM[s] for s in ("right", "left")},
             **{f"{s} chest wall": RG1_CHEST_WALL[s] for s in ("right", "left")}}
INTRATHORACIC = ("New right lower lobe consolidation.", "New left upper lobe consolidation.",
                 "New large right pleural effusion.", "New small left pleural effusion.",
                 "New right apical pneumothorax.", "New 3 cm right upper lobe mass.", "Interval development of cardiomegaly.")


@pytest.fixture(scope="module")
def rg1():
    return load_image(RG1)


@pytest.fixture(scope="module")
def rg1_png():
    export = rg1_exports()[1]  # 1024² letterbox, dark bars, burned-in text
    return load_image(export.data), export


def follow_up(prior, text: str, amplitude: float = 0.3, floor: float = 0.0):
    """Ground `text`, then render a stand-in engine change: ± a bump of `amplitude` at each point (+ `floor`
    everywhere), brightening for opacities and darkening for a pneumothorax."""
    points = ground(prior, text).points
    view, frame = prior.framed(128)
    y, x = np.mgrid[0:128, 0:128] + 0.5
    sign = -1.0 if "pneumothorax" in text else 1.0
    change = np.full((128, 128), floor, np.float32)
    for p in points:
        cx, cy = frame.to_model(p.x, p.y)
        change += sign * amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 10.0**2))
    film = composite_change(prior, view, np.clip(view + change, 0, 1).astype(np.float32), frame, points, 0.10,
                            EditRegion(), 4.0, text)
    return film, points


def attenuation(prior, film):
    scale = AttenuationScale.of(prior.intensity_map())
    before = scale.to_attenuation(prior.stored if prior.stored is not None else prior.array)
    after = scale.to_attenuation(film.stored if film.stored is not None else film.display)
    return before, after


def stored(image_or_film, prior):
    values = image_or_film.stored if prior.stored is not None else None
    if values is None:
        array = image_or_film.array if hasattr(image_or_film, "array") else image_or_film.display
        values = np.round(array * 65535)
    return values


def anatomy_lines(prior):
    """Below-diaphragm and outside-chest-wall masks of a film from its own anatomy (synthetic films: no tracing)."""
    anatomy = film_anatomy(prior)
    below = anatomy.film_mask(anatomy.below_diaphragm) > 0.5
    outside = anatomy.film_mask(anatomy.outside_chest_wall().astype(np.float32)) > 0.5
    return below, outside


def dense_soft_tissue_column(prior, before):
    """D from a column of spine and mediastinum: the middle 12 % of the film's width, 30–60 % of its height."""
    height, width = before.shape
    return fc.dense_soft_tissue(before, (int(0.44 * width), int(0.3 * height), int(0.56 * width), int(0.6 * height)))


@pytest.mark.parametrize("text", INTRATHORACIC)
def test_rg1_no_clipping_no_glow_and_the_change_stays_in_the_thorax(rg1, text):
    film, _ = follow_up(rg1, text, amplitude=0.6, floor=0.0)
    before, after = attenuation(rg1, film)
    delta = after - before
    assert fc.new_clipped(rg1.stored, film.stored) == 0
    column = (int(0.45 * 1841), 400, int(0.55 * 1841), 1400)  # spine + mediastinum of RG1
    assert fc.above_soft_tissue(before, after, fc.dense_soft_tissue(before, column)) == 0.0
    below = fc.below_diaphragm(before.shape, RG1_DIAPHRAGM["right"], RG1_DIAPHRAGM["left"])
    outside = fc.outside_chest_wall(before.shape, RG1_CHEST_WALL["right"], RG1_CHEST_WALL["left"])
    assert np.abs(delta).sum() > 0
    assert fc.change_share(delta, below) <= 0.10, text
    assert fc.change_share(delta, outside) <= 0.05, text


@pytest.mark.parametrize("text", INTRATHORACIC[:4])
def test_rg1_png_export_the_same_invariants(rg1_png, text):
    prior, export = rg1_png
    film, points = follow_up(prior, text, amplitude=0.6)
    assert all(p.confidence >= 4 for p in points)  # the lung fit works on the export: no approximate points
    before, after = attenuation(prior, film)
    delta = after - before
    assert fc.new_clipped(prior.stored, film.stored) == 0
    below = fc.below_diaphragm(before.shape, export.lines["right diaphragm"], export.lines["left diaphragm"])
    outside = fc.outside_chest_wall(before.shape, export.lines["right chest wall"], export.lines["left chest wall"])
    assert fc.change_share(delta, below) <= 0.10 and fc.change_share(delta, outside) <= 0.05


@pytest.mark.parametrize("path", SYNTHETIC, ids=[p.stem for p in SYNTHETIC])
@pytest.mark.parametrize("text", ("New right lower lobe consolidation.", "New large left pleural effusion.",
                                  "New left apical pneumothorax."))
def test_synthetic_films_no_clipping_no_glow_and_the_change_stays_in_the_thorax(path, text):
    prior = load_image(path)
    film, _ = follow_up(prior, text, amplitude=0.6)
    before, after = attenuation(prior, film)
    delta = after - before
    assert fc.new_clipped(prior.stored, film.stored) == 0
    assert fc.above_soft_tissue(before, after, dense_soft_tissue_column(prior, before)) == 0.0
    below, outside = anatomy_lines(prior)
    assert np.abs(delta).sum() > 0
    assert fc.change_share(delta, below) <= 0.10 and fc.change_share(delta, outside) <= 0.05


@pytest.mark.parametrize("which", ["rg1", "synthetic"])
def test_vessels_fade_inside_a_dense_new_opacity(rg1, which):
    prior = rg1 if which == "rg1" else load_image(SYNTHETIC[0])
    film, _ = follow_up(prior, "New severe right lower lobe consolidation.", amplitude=0.3)
    before, after = attenuation(prior, film)
    reduction = fc.texture_reduction(before, after, before.shape[1])
    assert reduction is not None and reduction >= 0.20


@pytest.mark.parametrize("which", ["rg1", "rg1-png", "synthetic"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_effusion_is_in_the_lower_hemithorax_and_larger_when_large(rg1, rg1_png, which, side):
    prior = {"rg1": rg1, "rg1-png": rg1_png[0]}.get(which) or load_image(SYNTHETIC[1])
    sums = {}
    for size in ("small", "large"):
        film, points = follow_up(prior, f"New {size} {side} pleural effusion.", amplitude=0.15)
        before, after = attenuation(prior, film)
        delta = after - before
        anatomy = film_anatomy(prior)
        box = anatomy.lung_box(side)
        apex_y = anatomy.to_film(0, box[1])[1]
        dome_y = float(np.nanmax([anatomy.to_film(0, float(r))[1]
                                  for r in anatomy.diaphragm[box[0]:box[2]]]))
        width = before.shape[1]
        x_film = [anatomy.to_film(float(c), 0)[0] for c in (box[0], box[2])]
        lower = fc.lower_half(before.shape, apex_y, dome_y, (min(x_film), max(x_film)))
        assert fc.change_share(delta, lower) >= 0.75, (size, side)
        assert all((p.x < width / 2) == (side == "right") for p in points)
        sums[size] = np.abs(delta).sum()
    assert sums["large"] > 1.5 * sums["small"]


def test_an_existing_dense_mass_does_not_turn_white(rg1):
    """RG1 has a mass over the right lower zone: an opacity drawn over it adds less there than over aerated lung."""
    film, (point,) = follow_up(rg1, "New right lower lobe consolidation.", amplitude=0.3)
    before, after = attenuation(rg1, film)
    delta = after - before
    region = film.region_mask() >= 0.99
    dense = region & (before >= np.percentile(before[region], 95))
    aerated = region & (before <= np.percentile(before[region], 20))
    assert delta[dense].mean() < 0.5 * delta[aerated].mean()


def test_outside_the_region_the_film_is_untouched_and_the_report_says_how_it_was_read(rg1):
    film, _ = follow_up(rg1, "New 3 cm right upper lobe mass and large left pleural effusion.")
    outside = film.region_mask() == 0
    assert np.array_equal(film.stored[outside], rg1.stored[outside])
    report = json.loads(json.dumps(film.params))
    model = report["opacity_model"]
    assert "attenuation" in model["domain"] and model["ceiling_C"] > model["air"]
    assert {"change_for_full_density", "texture_fade", "sigmas_film_px", "soft_tissue_T"} <= set(model)
    findings = {f["finding"]["kind"]: f for f in report["findings"]}
    assert findings["nodule"]["diameter_cm"] == 3.0 and "PixelSpacing" in findings["nodule"]["scale"]
    assert findings["effusion"]["finding"]["severity"] == "large" and findings["effusion"]["finding"]["level"] == 3.0
    assert report["anatomy"]["source"] in ("atlas fit", "segmented") and report["anatomy"]["confidence"] > 0.5


def test_a_pneumothorax_is_lucent_along_the_apicolateral_rim(rg1):
    film, (point,) = follow_up(rg1, "New right apical pneumothorax.", amplitude=0.3)
    before, after = attenuation(rg1, film)
    delta = after - before
    assert delta.min() < -0.02 and delta.max() <= 0.005  # darker only
    ys, xs = np.nonzero(delta < 0.5 * delta.min())
    assert np.median(ys) < RG1_LANDMARKS["right dome"][1] * 0.5 and np.median(xs) < 1841 / 2  # upper right lung


def test_model_view_output_stays_raw(rg1):
    from legend_demo.method.composite import model_view_film

    view, frame = rg1.framed(128)
    film = model_view_film(rg1, np.clip(view + 0.2, 0, 1), frame)
    assert film.mode == "model-view" and "opacity_model" not in film.params


def test_the_point_editor_draws_the_films_anatomy(rg1):
    from legend_demo.ui.point_editor import anatomy_overlay, editor_value

    value = editor_value(rg1.array, [], 0.1)
    assert value["overlay"]["anatomy"].startswith("data:image/png;base64,")
    noise = np.random.default_rng(0).random((300, 300)).astype(np.float32)
    assert anatomy_overlay(noise) == ""  # no chest found: nothing drawn


def test_a_faint_opacity_keeps_its_vessels_and_a_dense_one_hides_them():
    """Vessels fade as √f (opacity.py): ground glass (f ≈ 0.2) keeps most of its vessel contrast, a dense opacity
    (f ≈ 0.9) little of it; the band-pass energy is measured as in the real-film checks."""
    from legend_demo.method.opacity import TEXTURE_FADE, blur, render_opacity

    rng = np.random.default_rng(0)
    vessels = blur(rng.normal(0, 1, (256, 256)).astype(np.float32), 2.0)
    a = (0.35 + 0.05 * vessels / vessels.std()).astype(np.float32)
    sigmas = {"background": 12.0, "vessel": 4.0, "grain": 0.5}

    def kept(f: float) -> float:
        ones = np.ones_like(a)
        after = render_opacity(a, f * ones, 0.8 * ones, TEXTURE_FADE * ones, 0.9, 0.05 * ones, sigmas)
        band = lambda x: blur(x, sigmas["grain"]) - blur(x, sigmas["vessel"])  # noqa: E731
        core = (slice(32, -32), slice(32, -32))
        return float(np.abs(band(after)[core]).mean() / np.abs(band(a)[core]).mean())

    assert 0.5 <= kept(0.2) <= 0.75  # ground glass keeps most of its vessels (a linear fade would keep > 0.8)
    assert kept(0.9) <= 0.3 and kept(0.2) > kept(0.5) > kept(0.9)


def test_a_nodule_reaches_full_density_at_the_change_the_engine_learnt_for_nodules(rg1):
    """The same engine change means full density for a nodule (drawn at about half a consolidation's amplitude on the
    synthetic pairs) and half density for an effusion (composite.FULL_DENSITY_CHANGE_BY_KIND)."""
    from legend_demo.method.composite import CHANGE_FOR_FULL_DENSITY, full_density_change

    change = full_density_change("nodule")
    assert change < CHANGE_FOR_FULL_DENSITY and full_density_change("effusion") == CHANGE_FOR_FULL_DENSITY
    film, _ = follow_up(rg1, "New 3 cm right upper lobe mass and large left pleural effusion.", amplitude=0.0,
                        floor=change)
    drawn = {f["finding"]["kind"]: f["drawn"] for f in film.params["findings"]}
    assert "strength +1.00" in drawn["nodule"]
    expected = change / CHANGE_FOR_FULL_DENSITY
    assert f"strength +{expected:.2f}" in drawn["effusion"] or f"strength +{expected - 0.01:.2f}" in drawn["effusion"]


@pytest.mark.parametrize("which", ["rg1", "synthetic"])
def test_cardiomegaly_widens_the_heart_borders_without_a_bar_across_the_mediastinum(rg1, which):
    """The heart mask's top is a cut through the mediastinum, not a border: nothing is drawn above it."""
    prior = rg1 if which == "rg1" else load_image(SYNTHETIC[2])
    film, _ = follow_up(prior, "Interval development of cardiomegaly.", amplitude=0.3)
    before, after = attenuation(prior, film)
    delta = np.abs(after - before)
    anatomy = film_anatomy(prior)
    heart_top = anatomy.to_film(0, float(np.flatnonzero((anatomy.heart > 0.5).any(axis=1))[0]))[1]
    assert delta.sum() > 0
    assert delta[: max(0, int(heart_top) - 2)].sum() <= 0.02 * delta.sum()
