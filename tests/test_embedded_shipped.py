"""The shipped CPU model on a real film (pydicom-data's RG1_UNCI.dcm, PA chest CR): it draws the described change
where the points are, in the described direction, and leaves the film untouched outside the edit region.

The RG1 follow-ups at the model's own 20 steps take seconds each: they are the slow tier. The fast tier keeps the
same invariants in a few steps on a drawn chest (below), and the engine contract (tests/test_engine_contract.py)
runs this model too (keep region, zero bias = stock, source row, refusals)."""
import numpy as np
import pytest
from pydicom import data as pydicom_data

import legend_demo as ld
from legend_demo.core.points import LesionPoint
from legend_demo.synth.drawing import draw_chest

RG1 = pydicom_data.get_testdata_file("RG1_UNCI.dcm")
NEW = "New right lower lobe consolidation."
RESOLVED = "Right lower lobe consolidation has resolved."


@pytest.fixture(scope="module")
def shipped():
    engine = ld.load_engine("embedded")
    image = ld.load_image(RG1)
    points = ld.predict_points(image, NEW)
    assert points and all(p.x < image.size[0] / 2 for p in points)  # patient's right = image left on a PA film
    return engine, image, points


def _change(engine, image, points, text, **kwargs):
    result = engine.generate(ld.GenerationRequest(image=image, progression_text=text, points=points, seed=0,
                                                  **kwargs))
    return result.film.display - image.array, result.film.region_mask()


def test_shipped_model_has_its_trained_parts():
    engine = ld.load_engine("embedded")
    report = engine.generate(ld.GenerationRequest(image=ld.load_image(RG1), progression_text=NEW,
                                                  points=[LesionPoint(500.0, 1300.0)], seed=0, steps=4)).report()
    strengths = [s for s in report["provenance"]["parameters"]["strength_per_step"] if s is not None]
    assert strengths and min(strengths) > 0.3  # a trained s(τ), not the untrained 0.01 start
    fingerprints = report["provenance"]["checkpoint_fingerprints"]
    assert all(fingerprints.get(part) for part in ("transformer", "gbca_strength", "refine_head"))
    assert report["provenance"]["parameters"]["location_free_text"] is True  # the place comes from the points


@pytest.mark.slow  # a 20-step follow-up of the whole film
def test_new_opacity_brightens_inside_the_edit_region_only(shipped):
    engine, image, points = shipped
    change, region = _change(engine, image, points, NEW)
    core = region == 1
    assert change[core].mean() > 0.01  # opacity: brighter on the display (MONOCHROME1 is inverted on loading)
    assert np.array_equal(change[region == 0], np.zeros(int((region == 0).sum()), np.float32))


@pytest.mark.slow  # two 20-step follow-ups of the whole film
def test_the_text_sets_the_direction_of_the_change(shipped):
    engine, image, points = shipped
    new, region = _change(engine, image, points, NEW)
    resolved, _ = _change(engine, image, points, RESOLVED)
    core = region == 1
    assert new[core].mean() - resolved[core].mean() > 0.01


@pytest.mark.slow  # two 20-step follow-ups of the whole film
def test_gbca_moves_the_edit_rows_attention_onto_the_points(shipped):
    engine, image, points = shipped
    request = dict(image=image, progression_text=NEW, points=points, seed=0)
    full = engine.generate(ld.GenerationRequest(**request))
    off = engine.generate(ld.GenerationRequest(**request, bias_strength=0.0))
    iou = [np.mean([layer.attn_iou for layer in r.layers]) for r in (full, off)]
    assert iou[0] > 1.5 * iou[1]  # held-out synthetic cases: 0.075 vs 0.036 on average


def test_in_a_few_steps_a_new_opacity_brightens_and_a_resolved_one_does_not_and_only_inside_the_region():
    """The fast tier's version of the RG1 tests above: 4 steps on a drawn chest (new − resolved ≈ 0.027 here)."""
    engine = ld.load_engine("embedded")
    image = ld.GenerationRequest(image=draw_chest(200, 240)[0], progression_text=NEW).image
    points = ld.predict_points(image, NEW)
    new, region = _change(engine, image, points, NEW, steps=4)
    resolved, _ = _change(engine, image, points, RESOLVED, steps=4)
    core = region == 1
    assert new[core].mean() > 0.01 and new[core].mean() - resolved[core].mean() > 0.01
    assert np.array_equal(new[region == 0], np.zeros(int((region == 0).sum()), np.float32))
