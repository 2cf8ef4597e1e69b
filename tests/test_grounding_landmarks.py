"""Lung fields on a real film: hand-marked apex, dome and costophrenic angle of RG1_UNCI.dcm (marks and how they
were made: legend_demo/grounding/landmark_check.py) against the fitted fields, on the film and on transformed
copies (crops, pads, scale, gamma, noise, burned-in markers, a tube, rotation, mirrored with PatientOrientation
R\\F). Errors are fractions of the analysed image's height.

Bounds (measured worst case in brackets, benchmarks/bench_grounding.py): vertical error of every landmark
≤ 0.04 (0.025); distance ≤ 0.07 for apices (0.05) and costophrenic angles ≤ 0.05 (0.03); domes ≤ 0.12 (0.09) —
the top of a hemidiaphragm is flat, so its horizontal place is loosely defined.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from legend_demo.grounding import ground
from legend_demo.grounding.landmark_check import RG1_LANDMARKS, landmark_errors, rg1_array, rg1_exports, variants

pytest.importorskip("pydicom.data")
VERTICAL_BOUND = 0.04
DISTANCE_BOUND = {"apex": 0.07, "dome": 0.12, "costophrenic": 0.05}


@dataclass
class Film:
    """A load_image-like film: pixels, size and the orientation tag a DICOM copy would carry."""

    array: np.ndarray
    original_size: tuple[int, int]
    dicom_info: dict


VARIANTS = variants(rg1_array())


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_fitted_landmarks_are_near_the_hand_marks(variant):
    height, width = variant.array.shape
    film = Film(variant.array, (width, height), {"PatientOrientation": "\\".join(variant.orientation)})
    result = ground(film, "New right lower lobe consolidation.")
    assert result.lung_fields["source"] == "image", result.lung_fields["method"]
    found = {k: tuple(v) for k, v in result.lung_fields["landmarks"].items()}
    errors = landmark_errors(found, variant.landmarks, height)
    assert set(errors) == set(RG1_LANDMARKS)
    for name, (distance, vertical) in errors.items():
        assert vertical <= VERTICAL_BOUND, (name, vertical)
        assert distance <= DISTANCE_BOUND[name.split()[1]], (name, distance)


def test_the_issue_cases_land_low_enough_on_rg1():
    """Issue 11: lower-zone points sat at 0.43–0.50 H while the right dome is at 0.72 H; the effusion went mid-lung."""
    film = rg1_array()
    height, width = film.shape
    dome_y = RG1_LANDMARKS["right dome"][1]
    (zone,) = ground(film, "New right lower zone atelectasis.").points
    assert 0.55 * height < zone.y < dome_y and zone.x < width / 2
    (effusion,) = ground(film, "Interval increase in right pleural effusion.").points
    angle = np.array(RG1_LANDMARKS["right costophrenic"])
    # issue 19: where a reader would box the effusion — the lower hemithorax above the angle, not its tip
    assert angle[1] - 0.25 * height < effusion.y < angle[1] - 0.03 * height and angle[0] < effusion.x < width / 2
    (upper,) = ground(film, "New right upper lobe opacity.").points
    assert RG1_LANDMARKS["right apex"][1] + 0.1 * height < upper.y < 0.45 * height


def test_effusion_points_rise_with_severity_and_stay_above_the_diaphragm():
    """Issue 19: a larger effusion's point is higher; none lies below the hand-marked dome or at the angle's tip."""
    film = rg1_array()
    for side in ("right", "left"):
        small, moderate, large = (ground(film, f"New {size} {side} pleural effusion.").points[0]
                                  for size in ("small", "moderate", "large"))
        assert small.y > moderate.y > large.y
        angle = np.array(RG1_LANDMARKS[f"{side} costophrenic"])
        for point in (small, moderate, large):
            assert point.y < angle[1] - 0.02 * film.shape[0]
            assert (point.x < film.shape[1] / 2) == (side == "right")


def test_left_middle_lobe_is_the_left_mid_zone_with_a_note():
    film = rg1_array()
    result = ground(film, "Left middle lobe opacity has worsened.")
    (point,) = result.points
    assert point.x > film.shape[1] / 2  # the patient's left = image right: never the right middle lobe
    assert any("there is no left middle lobe" in w and "left mid zone" in w for w in result.warnings)


def test_severity_words_stay_in_the_labels():
    labels = [p.label for p in ground(rg1_array(), "Small left pleural effusion and moderate right apical "
                                                    "pneumothorax, both increased. Trace right effusion.").points]
    assert any(label.startswith("small effusion") for label in labels)
    assert any(label.startswith("moderate pneumothorax") for label in labels)
    assert any(label.startswith("trace effusion") for label in labels)


EXPORTS = rg1_exports()


@pytest.mark.parametrize("export", EXPORTS, ids=[e.name for e in EXPORTS])
def test_exported_files_fit_like_the_dicom(export):
    """Issue 19: RG1 as people export it (8-bit PNG/JPEG, changed aspect, dark or white bars, burned-in text, slight
    rotation with black corners), loaded from the file's bytes: the same landmark bounds, and no effusion or
    lower-lobe point below the hand-traced hemidiaphragm."""
    from legend_demo import load_image
    from legend_demo.evaluation.film_checks import polyline_rows

    image = load_image(export.data)
    height, width = image.array.shape
    result = ground(image, "New right lower lobe consolidation. New large left pleural effusion.")
    assert result.lung_fields["source"] == "image", result.lung_fields["method"]
    errors = landmark_errors({k: tuple(v) for k, v in result.lung_fields["landmarks"].items()}, export.landmarks,
                             height)
    for name, (distance, vertical) in errors.items():
        assert vertical <= VERTICAL_BOUND, (name, vertical)
        assert distance <= DISTANCE_BOUND[name.split()[1]], (name, distance)
    line = polyline_rows(export.lines["right diaphragm"] + export.lines["left diaphragm"], width)
    assert len(result.points) == 2
    for p in result.points:
        assert p.y < line[int(p.x)] and p.confidence >= 4
