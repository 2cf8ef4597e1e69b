"""How each point's finding is read (issue 19): kind, side, severity level and size from the grounder's label or the
text; the shape score of `evaluate` on hand-made maps; a film's anatomy and the fallback when no lungs are found."""
from __future__ import annotations

import numpy as np
import pytest

from legend_demo.evaluation.shape_score import shape_dice
from legend_demo.method.findings import finding_of, read_label, read_text
from legend_demo.core.points import LesionPoint


@pytest.mark.parametrize("label, kind, side, level, size", [
    ("small effusion, increased (L costophrenic)", "effusion", "left", 1.0, None),
    ("large effusion, new (R costophrenic)", "effusion", "right", 3.0, None),
    ("3 cm mass, new (RUL)", "nodule", "right", 2.0, 3.0),
    ("consolidation, new (RLL)", "airspace", "right", 2.0, None),
    ("severe consolidation, worse (LLL)", "airspace", "left", 3.0, None),
    ("trace pneumothorax, new (R apicolateral)", "pneumothorax", "right", 0.5, None),
    ("cardiomegaly, new (cardiac)", "cardiac", None, 2.0, None),
])
def test_grounder_labels_are_read_back(label, kind, side, level, size):
    finding = read_label(label)
    assert (finding.kind, finding.side, finding.level, finding.size_cm) == (kind, side, level, size)
    assert finding.source == "label" and "level" in finding.describe()


def test_text_sizes_and_severity_belong_to_their_finding():
    mass, nodule = read_text("A 3 cm mass in the right upper lobe is new. New 15 mm nodule in the left lower lobe.")
    assert (mass.kind, mass.size_cm, mass.side) == ("nodule", 3.0, "right")
    assert (nodule.size_cm, nodule.side) == (1.5, "left")
    nodule, effusion = read_text("New 2 cm right lower lobe nodule and large left effusion")
    assert effusion.size_cm is None and effusion.level == 3.0 and nodule.size_cm == 2.0
    assert read_text("No pneumothorax.") == []  # negated findings are not drawn


def test_unlabelled_points_take_the_finding_on_their_side():
    text = "New right lower lobe consolidation and large left pleural effusion."
    right = finding_of(LesionPoint(100, 300), text, image_width=400)
    left = finding_of(LesionPoint(300, 300, label="L CP angle"), text, image_width=400)
    assert (right.kind, right.side) == ("airspace", "right") and (left.kind, left.level) == ("effusion", 3.0)
    assert finding_of(LesionPoint(1, 1), "").kind == "other"


def test_shape_dice_on_hand_made_maps():
    mask = np.zeros((50, 50), bool)
    mask[10:30, 10:30] = True
    exact = np.where(mask, 0.2, 0.0)
    assert shape_dice(exact, mask) == 1.0
    spread = np.zeros((50, 50))
    spread[0:40, 0:40] = 0.2  # a region 4× the lesion
    assert shape_dice(spread, mask) == pytest.approx(2 * 400 / (1600 + 400))
    assert shape_dice(-exact, mask) == 1.0  # the sign does not matter, the support does
    assert shape_dice(np.zeros((50, 50)), mask) == 0.0 and shape_dice(exact, np.zeros((50, 50), bool)) is None
    with pytest.raises(ValueError, match="shape"):
        shape_dice(exact, mask[:10])


def test_no_lung_fields_means_approximate_points_above_the_estimated_diaphragm():
    """RG1 blurred until the lung fit refuses it: the points stay in the thorax above the traced diaphragm, at
    confidence 3, and the warning says why, in words for a clinician."""
    import cv2

    from legend_demo.grounding import ground
    from legend_demo.grounding.landmark_check import RG1_DIAPHRAGM, rg1_array

    film = cv2.GaussianBlur(rg1_array(), (0, 0), 40)
    result = ground(film, "New right lower lobe consolidation. New left pleural effusion.")
    assert result.lung_fields["source"] == "coarse" and result.lung_fields["anatomy"]["source"] == "intensity profiles"
    assert result.points and all(p.confidence <= 3 and "approximate" in p.label for p in result.points)
    for p in result.points:
        dome = min(y for _, y in RG1_DIAPHRAGM["right"] + RG1_DIAPHRAGM["left"])
        assert p.y < dome and 100 < p.x < 1700
    assert any("approximate" in w and "confidence is lowered to 3" in w and "check and move them" in w
               for w in result.warnings)


def test_shape_dice_counts_a_missing_change_as_zero_and_small_findings_on_their_own():
    from legend_demo.evaluation.summary import by_type, method_checks, aggregate

    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:10] = True
    assert shape_dice(np.zeros((20, 20)), mask) == 0.0  # nothing drawn where a change was described

    def row(case, kind, sign, dice, config="full"):
        return {"case": case, "type": kind, "sign": sign, "config": config, "shape_dice": dice,
                "lesion_fidelity": 0.05 if sign else None, "lesion_change": 0.05, "psnr_out": 40.0, "change_tiling": 1.0}

    rows = [row("a", "nodule", 1, 0.2), row("b", "nodule", -1, 0.4), row("c", "consolidation", 1, 0.9),
            row("d", "consolidation", 0, 0.0)]  # unchanged: not scored
    table = by_type(rows, ["full"])["full"]
    assert table["nodule"]["mean"] == pytest.approx(0.3) and table["consolidation"]["n"] == 1
    checks = {c["criterion"]: c for c in method_checks(rows, aggregate(rows, ["full"]))}
    overall = next(c for k, c in checks.items() if k.startswith("shape Dice ≥"))
    small = next(c for k, c in checks.items() if k.startswith("shape Dice of small"))
    assert overall["level"]["mean"] == pytest.approx(0.5) and overall["level"]["n"] == 3 and not overall["pass"]
    assert small["level"]["mean"] == pytest.approx(0.3) and not small["pass"]


def test_the_report_says_when_the_engine_drew_nothing_or_the_opposite_of_the_text():
    from legend_demo.method.composite import FAINT_CHANGE, engine_agreement

    new_opacity, = read_text("new right lower lobe consolidation")
    new_air, = read_text("new right apical pneumothorax")
    resolved, = read_text("right lower lobe consolidation has resolved")
    assert engine_agreement(new_opacity, +0.05) == ""  # opacity for a new consolidation: as asked
    assert "almost nothing" in engine_agreement(new_opacity, FAINT_CHANGE / 2)
    assert "opposite" in engine_agreement(new_opacity, -0.05) and "asks for opacity" in engine_agreement(new_opacity, -0.05)
    assert engine_agreement(new_air, -0.05) == ""  # a pneumothorax is a lucency
    assert "asks for lucency" in engine_agreement(new_air, +0.05)
    assert engine_agreement(resolved, -0.05) == "" and "opposite" in engine_agreement(resolved, +0.05)


def test_a_finding_the_engine_did_not_draw_is_a_clinician_warning():
    from legend_demo.method.composite import drawing_warnings
    from legend_demo.ui.notices import clinical

    params = {"findings": [{"read": "x", "what": "pneumothorax right apex",
                            "engine_disagrees": "the engine drew the opposite of the described change here (mean "
                                                "change +0.0113, the text asks for lucency); the film follows the engine"},
                           {"read": "y"}]}
    messages = drawing_warnings(params)
    assert len(messages) == 1 and "pneumothorax right apex" in messages[0]
    said = clinical(messages[0])
    assert said.startswith("The model did not draw the pneumothorax right apex as described")
    assert "opposite" in said and "+0.0113" not in said


def test_a_point_outside_its_findings_compartment_is_said_to_draw_nothing():
    from legend_demo import load_image
    from legend_demo.method.composite import composite_change, drawing_warnings
    from legend_demo.method.edit_region import EditRegion
    from legend_demo.ui.notices import clinical

    pydicom_data = pytest.importorskip("pydicom.data")
    prior = load_image(pydicom_data.get_testdata_file("RG1_UNCI.dcm"))
    view, frame = prior.framed(128)
    in_liver = LesionPoint(x=450, y=2300, label="effusion, new (right)", confidence=5)  # far below the right dome
    film = composite_change(prior, view, np.clip(view + 0.2, 0, 1).astype(np.float32), frame, [in_liver], 0.10,
                            EditRegion(), 4.0, "New right pleural effusion.")
    assert np.array_equal(film.stored, prior.stored)
    message, = drawing_warnings(film.params)
    said = clinical(message)
    assert said.startswith("Nothing was drawn for the effusion") and "Move the point" in said
