"""Synthetic export: burned-in label, PNG text chunks, DICOM Secondary Capture tags, fresh UIDs, no identifiers."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from legend_demo import load_image, save_synthetic_dicom, save_synthetic_png
from legend_demo.core.export import SYNTHETIC_LABEL, label_lines, with_label_band

ENGINE, CHECKPOINT = "lite", "lite-v1.safetensors"
SOURCE_IDENTIFIERS = ("Doe^Jane", "Doe", "MRN-7391-XQ", "ACC-55512", "St Elsewhere", "19610203", "20240517")


def chest_like(side: int = 256) -> np.ndarray:
    """A smooth (side, side) [0, 1] image: bright centre, darker edges."""
    y, x = np.mgrid[0:side, 0:side] / (side - 1)
    return (0.2 + 0.6 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) * 6)).astype(np.float32)


def source_dicom_bytes() -> tuple[bytes, list[str]]:
    """A DX source image carrying identifiers that must never reach an export."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1.1", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "MRN-7391-XQ", "19610203"
    ds.StudyDate, ds.AccessionNumber, ds.InstitutionName = "20240517", "ACC-55512", "St Elsewhere Hospital"
    ds.Modality = "DX"
    ds.set_pixel_data((chest_like() * 4095).astype(np.uint16), "MONOCHROME2", 12)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]


def band_rows(labelled: np.ndarray, original: np.ndarray) -> int:
    """How many rows the label band added below the image (the image rows must be untouched)."""
    height = original.shape[0]
    assert labelled.shape[1] == original.shape[1] and labelled.shape[0] > height
    return labelled.shape[0] - height


# ---------------------------------------------------------------- label band


def test_label_band_is_added_below_and_never_covers_the_image():
    image = chest_like()
    labelled = with_label_band(image, label_lines(ENGINE, CHECKPOINT))
    assert labelled.dtype == np.float32 and np.array_equal(image, chest_like())  # input untouched
    np.testing.assert_array_equal(labelled[:256], image)  # every image pixel kept
    rows = band_rows(labelled, image)
    assert 10 < rows < 256 // 2
    band = labelled[256:]
    assert band.max() > 0.95 and np.mean(band < 0.1) > 0.5  # white glyphs on a dark band
    assert labelled.min() >= 0.0 and labelled.max() <= 1.0


def test_label_lines_carry_the_disclaimer_and_provenance():
    lines = label_lines(ENGINE, CHECKPOINT, ["seed 7"])
    assert lines[0] == SYNTHETIC_LABEL == "SYNTHETIC — research use, not for diagnosis"
    assert ENGINE in lines[1] and CHECKPOINT in lines[1] and lines[2] == "seed 7"


def test_characters_missing_from_the_font_are_drawn_as_ascii_not_boxes():
    image = chest_like()
    fancy = with_label_band(image, ["café — 3×σ ≥ 2 · s(τ)"])
    plain = with_label_band(image, ["cafe - 3xsigma >= 2 . s(tau)"])
    np.testing.assert_array_equal(fancy, plain)


def test_long_lines_wrap_instead_of_running_off_the_image():
    narrow = np.full((256, 96), 0.5, np.float32)
    labelled = with_label_band(narrow, [SYNTHETIC_LABEL])
    one_line = band_rows(with_label_band(narrow, ["SYNTHETIC"]), narrow)
    assert band_rows(labelled, narrow) > 1.5 * one_line  # wrapped onto more than one line
    assert labelled[256:, -2:].max() < 0.9  # no glyph pressed against the right edge


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((64, 64, 3), np.float32), "(64, 64, 3)"),
        (np.full((64, 64), 1.5, np.float32), "max 1.5"),
        (np.full((64, 64), -0.25, np.float32), "min -0.25"),
        (np.full((64, 64), np.nan, np.float32), "4096 NaN"),
        (np.zeros((32, 64), np.float32), "64x32"),
        (np.zeros((64, 64), np.complex64), "complex64"),
    ],
)
def test_invalid_images_raise_value_errors_naming_the_values(bad, words):
    with pytest.raises(ValueError) as caught:
        with_label_band(bad, ["x"])
    assert words in str(caught.value)


def test_empty_label_and_empty_provenance_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="non-empty line"):
        with_label_band(chest_like(), ["", "  "])
    with pytest.raises(ValueError, match="engine must be a non-empty string, got ''"):
        save_synthetic_png(chest_like(), tmp_path / "x.png", engine="", checkpoint=CHECKPOINT)
    with pytest.raises(ValueError, match="bits must be 8 or 16, got 12"):
        save_synthetic_dicom(chest_like(), tmp_path / "x.dcm", engine=ENGINE, checkpoint=CHECKPOINT, bits=12)


# ---------------------------------------------------------------- PNG


def test_png_round_trip_is_8bit_gray_with_label_and_text_chunks(tmp_path):
    image = chest_like()
    path = save_synthetic_png(image, str(tmp_path / "followup.png"), engine=ENGINE, checkpoint=CHECKPOINT,
                              extra_lines=["seed 7"])
    assert path == tmp_path / "followup.png"
    with Image.open(path) as written:
        assert (written.format, written.mode, written.size[0]) == ("PNG", "L", 256) and written.size[1] > 256
        pixels = np.asarray(written, dtype=np.float32) / 255.0
        chunks = dict(written.text)
    assert band_rows(pixels, image) > 10
    np.testing.assert_allclose(pixels[:256], image, atol=0.5 / 255 + 1e-6)
    assert chunks["Software"].startswith("LeGend demo")
    assert chunks["Description"].startswith("SYNTHETIC image") and ENGINE in chunks["Description"]
    assert CHECKPOINT in chunks["Description"] and chunks["Comment"] == "seed 7"


def test_png_export_reloads_through_load_image(tmp_path):
    path = save_synthetic_png(chest_like(), tmp_path / "f.png", engine=ENGINE, checkpoint=CHECKPOINT)
    loaded = load_image(path)
    assert loaded.size[0] == 256 and loaded.size[1] > 256 and loaded.bit_depth == 8


# ---------------------------------------------------------------- DICOM


@pytest.mark.parametrize("bits", [8, 16])
def test_dicom_secondary_capture_tags_and_pixels(tmp_path, bits):
    image = chest_like()
    path = save_synthetic_dicom(image, tmp_path / "f.dcm", engine=ENGINE, checkpoint=CHECKPOINT, bits=bits)
    ds = pydicom.dcmread(path)  # requires the DICM preamble and valid file meta
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert ds.BurnedInAnnotation == "YES" and ds.ConversionType == "SYN"
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (bits, bits, bits - 1, 0)
    for keyword in ("SeriesDescription", "ImageComments", "DerivationDescription"):
        assert "SYNTHETIC" in ds[keyword].value and ENGINE in ds[keyword].value
    assert str(ds.PatientName) == "SYNTHETIC^LEGEND" and ds.PatientID == "SYNTHETIC"
    pixels = ds.pixel_array.astype(np.float64) / (2**bits - 1)
    assert band_rows(pixels, image) > 10 and ds.Rows == pixels.shape[0] and ds.Columns == 256
    np.testing.assert_allclose(pixels[:256], image, atol=0.5 / (2**bits - 1) + 1e-6)


def test_two_dicom_exports_get_fresh_distinct_uids(tmp_path):
    first, second = (
        pydicom.dcmread(save_synthetic_dicom(chest_like(), tmp_path / name, engine=ENGINE, checkpoint=CHECKPOINT))
        for name in ("a.dcm", "b.dcm")
    )
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert first[keyword].value != second[keyword].value
        assert first[keyword].value.is_valid


def test_no_source_identifier_reaches_either_export(tmp_path):
    data, source_uids = source_dicom_bytes()
    loaded = load_image(data)
    png = save_synthetic_png(loaded.array, tmp_path / "f.png", engine=ENGINE, checkpoint=CHECKPOINT)
    dcm = save_synthetic_dicom(loaded.array, tmp_path / "f.dcm", engine=ENGINE, checkpoint=CHECKPOINT)
    for written in (png.read_bytes(), dcm.read_bytes()):
        for identifier in (*SOURCE_IDENTIFIERS, *source_uids):
            assert identifier.encode() not in written


def test_dicom_export_reloads_through_load_image(tmp_path):
    path = save_synthetic_dicom(chest_like(), tmp_path / "f.dcm", engine=ENGINE, checkpoint=CHECKPOINT, bits=16)
    loaded = load_image(path)
    assert loaded.source_format == "dicom" and loaded.size[0] == 256 and loaded.size[1] > 256
    assert loaded.dicom_info["Modality"] == "OT"
