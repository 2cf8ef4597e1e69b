"""DICOM orientation and view on a real film: mirrored and turned copies of RG1_UNCI.dcm keep the patient's sides,
a lateral view is refused, a non-chest film and a PNG without a chest are warned about."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from legend_demo.grounding import LateralViewError, check_frontal_chest, ground, patient_sides
from legend_demo.grounding.orientation import NOT_A_CHEST, read_orientation
from legend_demo.core.image_io import load_image

pydicom_data = pytest.importorskip("pydicom.data")
RG1 = pydicom_data.get_testdata_file("RG1_UNCI.dcm")  # PA chest CR, PatientOrientation L\F
RG3 = pydicom_data.get_testdata_file("RG3_UNCI.dcm")  # AP tibia CR, BodyPartExamined EXTREMITY
TEXT = "New right lower lobe consolidation. Increased left pleural effusion."


def rewritten(tmp_path, name: str, transform=None, **tags) -> str:
    """RG1 with its stored pixels transformed and tags replaced, written as a new DICOM file."""
    ds = pydicom.dcmread(RG1)
    if transform is not None:
        pixels = np.ascontiguousarray(transform(ds.pixel_array))
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    path = tmp_path / name
    ds.save_as(path)
    return str(path)


@pytest.fixture(scope="module")
def original():
    return ground(RG1, TEXT)


def by_label(result, word):
    return next(p for p in result.points if word in p.label)


def test_standard_film_puts_the_patients_right_on_the_image_left(original):
    width = original.image_size[0]
    assert by_label(original, "RLL").x < width / 2 < by_label(original, "effusion").x
    assert original.orientation.startswith("PatientOrientation L\\F: standard")


def test_a_mirrored_film_tagged_r_f_keeps_the_patients_sides(tmp_path, original):
    path = rewritten(tmp_path, "mirrored.dcm", lambda a: a[:, ::-1], PatientOrientation=["R", "F"])
    mirrored = ground(path, TEXT)
    width = mirrored.image_size[0]
    rll, effusion = by_label(mirrored, "RLL"), by_label(mirrored, "effusion")
    assert effusion.x < width / 2 < rll.x  # the patient's right lung is on the image RIGHT of this film
    expected = sorted((width - 1 - p.x, p.y, p.label) for p in original.points)
    assert sorted((p.x, p.y, p.label) for p in mirrored.points) == expected
    assert "mirrored" in mirrored.orientation
    assert patient_sides(load_image(path)) == {"right": "image right", "left": "image left"}


def test_the_same_mirrored_pixels_without_the_tag_are_read_as_standard(tmp_path, original):
    path = rewritten(tmp_path, "mirrored-untagged.dcm", lambda a: a[:, ::-1], PatientOrientation=["L", "F"])
    result = ground(path, TEXT)
    assert by_label(result, "RLL").x < result.image_size[0] / 2  # the tag, not the pixels, says where sides are


@pytest.mark.parametrize("tag, transform", [
    (["L", "H"], lambda a: a[::-1, :]),  # stored upside down
    (["F", "L"], lambda a: a.T),  # turned a quarter: rows run head → feet
    (["H", "R"], lambda a: a.T[::-1, ::-1]),  # turned the other way and mirrored
])
def test_films_stored_upside_down_or_turned_map_points_back(tmp_path, original, tag, transform):
    path = rewritten(tmp_path, "turned.dcm", transform, PatientOrientation=tag)
    result = ground(path, TEXT)
    orientation, _ = read_orientation({"PatientOrientation": tag})
    stored = load_image(path).original_size
    height, width = load_image(RG1).array.shape
    for p, q in zip(sorted(result.points, key=lambda p: p.label), sorted(original.points, key=lambda p: p.label)):
        # bring the point back to standard display and compare with the original film's point
        probe = np.zeros(stored[::-1], np.uint8)
        probe[int(p.y), int(p.x)] = 1
        ys, xs = np.nonzero(orientation.to_standard(probe))
        assert (xs[0], ys[0], p.label) == (q.x, q.y, q.label)
    assert (width, height) == orientation.standard_size(stored)


@pytest.mark.parametrize("tags", [{"ViewPosition": "LL"}, {"ViewPosition": "RL"}, {"ViewPosition": "LATERAL"},
                                  {"PatientOrientation": ["A", "F"]}])
def test_a_lateral_view_is_refused_with_a_clear_message(tmp_path, tags):
    path = rewritten(tmp_path, "lateral.dcm", **tags)
    with pytest.raises(LateralViewError, match="lateral view.*frontal PA or AP"):
        ground(path, TEXT)
    with pytest.raises(ValueError, match="lateral"):  # LateralViewError is a ValueError: CLI exit 2, UI message
        check_frontal_chest(load_image(path))


def test_the_cli_refuses_to_generate_on_a_lateral_view(tmp_path, capsys):
    from legend_demo.cli import main

    path = rewritten(tmp_path, "lateral.dcm", ViewPosition="LL")
    code = main(["generate", "--image", path, "--text", TEXT, "--engine", "tiny", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "lateral view" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_non_chest_dicom_is_warned_about():
    result = ground(RG3, TEXT)
    assert any("BodyPartExamined is 'EXTREMITY'" in w and NOT_A_CHEST in w for w in result.warnings)
    assert any(NOT_A_CHEST in w and "no lung fields found" in w for w in result.warnings)


def test_a_png_with_no_chest_is_warned_about(tmp_path):
    path = tmp_path / "tibia.png"
    Image.fromarray((load_image(RG3).array * 255).astype(np.uint8)).save(path)
    result = ground(str(path), TEXT)
    assert result.lung_fields["source"] == "coarse"
    assert any(w.startswith(NOT_A_CHEST) for w in result.warnings)
    assert "no orientation tags" in result.orientation


def test_a_png_of_a_real_chest_reports_where_its_fields_came_from(tmp_path):
    path = tmp_path / "rg1.png"
    Image.fromarray((load_image(RG1).array * 255).astype(np.uint8)).resize((1024, 1024)).save(path)
    result = ground(str(path), TEXT)
    assert result.lung_fields["source"] == "image" and "atlas" in result.lung_fields["method"]
    assert not any(NOT_A_CHEST in w for w in result.warnings)


def test_oblique_and_one_sided_tags_are_warned_about():
    warnings = check_frontal_chest({"ViewPosition": "RAO", "ImageLaterality": "L", "BodyPartExamined": "CHEST"})
    assert any("oblique" in w for w in warnings) and any("ImageLaterality L" in w for w in warnings)
    assert check_frontal_chest({"ViewPosition": "PA", "BodyPartExamined": "CHEST"}) == []
