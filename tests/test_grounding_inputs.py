"""Grounding inputs: paths (PNG, DICOM), LoadedImage, arrays; points come back in the ORIGINAL pixels."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from legend_demo.core.errors import ImageInputError
from legend_demo.grounding import ground
from legend_demo.synth.drawing import draw_chest

TEXT = "New right lower lobe consolidation. Increased left upper lobe opacity."


def assert_in_the_named_lungs(result, right_lung, left_lung):
    assert len(result.points) == 2
    rll = next(p for p in result.points if "RLL" in p.label)
    lul = next(p for p in result.points if "LUL" in p.label)
    assert right_lung.contains(rll.x, rll.y) and rll.y > right_lung.centre[1]
    assert left_lung.contains(lul.x, lul.y) and lul.y < left_lung.centre[1]


def test_non_square_png_path_maps_to_original_pixels(tmp_path):
    chest, right, left = draw_chest(640, 360)
    path = tmp_path / "wide.png"
    Image.fromarray((chest * 65535).astype(np.uint16)).save(path)
    result = ground(str(path), TEXT)
    assert result.image_size == (640, 360)
    assert_in_the_named_lungs(result, right, left)


def test_monochrome1_dicom_is_read_with_lungs_dark_and_points_in_original_pixels(tmp_path):
    chest, right, left = draw_chest(300, 420)
    inverted = ((1.0 - chest) * 4095).round().astype(np.uint16)  # MONOCHROME1: air is bright in the stored values
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.ViewPosition = "DX", "PA"
    ds.set_pixel_data(inverted, photometric_interpretation="MONOCHROME1", bits_stored=12)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "chest.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).Rows == 420
    result = ground(path, TEXT)
    assert result.image_size == (300, 420)
    assert not any("coarse" in w for w in result.warnings), result.warnings
    assert_in_the_named_lungs(result, right, left)


@dataclass
class ReducedLoadedImage:
    """A load_image-like result whose array is a half-size preview of a larger original."""

    array: np.ndarray
    original_size: tuple[int, int]


def test_points_scale_from_a_reduced_array_to_the_original_size():
    full, right, left = draw_chest(800, 960)
    half = full[::2, ::2]
    result = ground(ReducedLoadedImage(half, (800, 960)), TEXT)
    assert result.image_size == (800, 960)
    assert_in_the_named_lungs(result, right, left)


def test_uint8_and_rgb_arrays_are_accepted():
    chest, right, left = draw_chest(256, 256)
    gray8 = (chest * 255).astype(np.uint8)
    rgb = np.repeat(gray8[..., None], 3, axis=2)
    for image in (gray8, rgb):
        assert_in_the_named_lungs(ground(image, TEXT), right, left)


@pytest.mark.parametrize("bad", [np.zeros(100), np.zeros((8, 8)), np.full((64, 64), np.nan), "not-a-file.png"])
def test_unusable_images_raise_image_input_error(bad):
    with pytest.raises((ImageInputError, FileNotFoundError)):
        ground(bad, TEXT)


def test_bytes_of_a_png_are_accepted():
    chest, right, left = draw_chest(320, 384)
    buffer = io.BytesIO()
    Image.fromarray((chest * 255).astype(np.uint8)).save(buffer, format="PNG")
    assert_in_the_named_lungs(ground(buffer.getvalue(), TEXT), right, left)
