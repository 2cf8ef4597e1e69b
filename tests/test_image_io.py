"""load_image: every supported format and mode, DICOM LUTs, privacy, and every kind of bad input."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from legend_demo import ImageInputError, LoadedImage, SquareFrame, load_image
from legend_demo.core.image_io import MAX_PIXELS, MIN_SIDE, _array_from_pillow

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
PATIENT_NAME, PATIENT_ID = "Doe^Jane", "MRN-7391-XQ"
ACCESSION, INSTITUTION = "ACC-55512", "St Elsewhere Hospital"
STUDY_UID = "1.2.3.4.5.6.7.8.9.424242"


# ---------------------------------------------------------------- factories


def gradient_u16(height: int = 96, width: int = 128) -> np.ndarray:
    """Horizontal ramp 0 → 65535 with a distinct bright block in the top-left corner (orientation marker)."""
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    image = np.tile(ramp, (height, 1))
    image[:16, :16] = 65535
    return image


def gradient_u8(height: int = 96, width: int = 128) -> np.ndarray:
    return (gradient_u16(height, width) // 257).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def make_dicom(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12, **elements) -> Dataset:
    """A single-frame DX dataset with identifying fields a loader must never keep."""
    ds = Dataset()
    ds.SOPClassUID = elements.pop("SOPClassUID", DX_FOR_PRESENTATION)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.PatientBirthDate, ds.StudyDate = "19610203", "20240517"
    ds.AccessionNumber, ds.InstitutionName = ACCESSION, INSTITUTION
    ds.Modality, ds.ViewPosition = "DX", "PA"
    if pixels is not None:
        ds.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=bits_stored)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ramp_u12(height: int = 96, width: int = 128) -> np.ndarray:
    return np.tile(np.linspace(0, 4095, width).round().astype(np.uint16), (height, 1))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height 8-bit gray with a token IDAT: a decompression-bomb stand-in."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(64))) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# ---------------------------------------------------------------- PNG / JPEG


def test_8bit_png_keeps_values_and_orientation():
    pixels = gradient_u8()
    loaded = load_image(encode(Image.fromarray(pixels), "PNG"))
    assert isinstance(loaded, LoadedImage)
    assert loaded.array.dtype == np.float32 and loaded.array.shape == (96, 128)
    assert loaded.size == loaded.original_size == (128, 96)
    assert (loaded.source_format, loaded.bit_depth, loaded.notes) == ("png", 8, [])
    np.testing.assert_allclose(loaded.array, pixels / 255.0, atol=1e-6)
    assert loaded.array[0, 0] == 1.0 and loaded.array[-1, 0] == 0.0  # marker top-left, ramp starts dark


def test_16bit_png_divides_by_65535_and_keeps_precision():
    pixels = gradient_u16()
    loaded = load_image(encode(Image.fromarray(pixels), "PNG"))
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.array, pixels / 65535.0, atol=1e-6)
    assert len(np.unique(loaded.array)) > 120 and np.diff(loaded.array[-1]).min() > 0


def test_12bit_data_in_16bit_png_is_stretched_with_a_note():
    pixels = ramp_u12()
    loaded = load_image(encode(Image.fromarray(pixels), "PNG"))
    np.testing.assert_allclose(loaded.array, pixels / 4095.0, atol=1e-6)
    assert any("stretched" in note for note in loaded.notes)


def test_rgb_png_becomes_luma_gray():
    gray = gradient_u8()
    rgb = np.stack([gray, gray // 2, np.zeros_like(gray)], axis=-1)
    loaded = load_image(encode(Image.fromarray(rgb), "PNG"))
    expected = (0.299 * gray + 0.587 * (gray // 2)) / 255.0
    np.testing.assert_allclose(loaded.array, expected, atol=1e-5)
    assert "RGB converted to grayscale" in loaded.notes


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_alpha_and_palette_modes_load_as_gray(mode):
    gray = gradient_u8()
    source = Image.fromarray(gray).convert(mode)
    loaded = load_image(encode(source, "PNG"))
    np.testing.assert_allclose(loaded.array, gray / 255.0, atol=1.5 / 255)
    assert loaded.array[0, 0] > 0.99 and loaded.array[-1, 0] < 0.01


def test_32bit_integer_mode_uses_the_16bit_range():
    pixels = gradient_u16().astype(np.int32)
    array, bit_depth, notes = _array_from_pillow(Image.fromarray(pixels, mode="I"))
    assert bit_depth == 16 and notes == []
    np.testing.assert_allclose(array, pixels / 65535.0)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_loads_close_to_source(mode):
    gray = gradient_u8()
    loaded = load_image(encode(Image.fromarray(gray).convert(mode), "JPEG", quality=95))
    assert loaded.source_format == "jpeg"
    assert np.abs(loaded.array - gray / 255.0).mean() < 0.02


def test_jpeg_exif_orientation_is_applied():
    gray = gradient_u8()
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180°
    loaded = load_image(encode(Image.fromarray(gray), "JPEG", quality=95, exif=exif.tobytes()))
    assert "EXIF orientation applied" in loaded.notes
    assert loaded.array[-1, -1] > 0.95  # the top-left marker is now bottom-right


def test_every_source_kind_gives_the_same_image(tmp_path):
    data = encode(Image.fromarray(gradient_u8()), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        from_file = load_image(handle)
    for source in (str(path), path, data, bytearray(data), io.BytesIO(data)):
        np.testing.assert_array_equal(load_image(source).array, from_file.array)


def test_framed_pads_to_a_square_and_maps_points():
    loaded = load_image(encode(Image.fromarray(gradient_u8(96, 128)), "PNG"))
    square, frame = loaded.framed(side=64, mode="pad")
    assert square.shape == (64, 64) and square.dtype == np.float32
    assert isinstance(frame, SquareFrame) and frame.original_size == (128, 96)
    x, y = frame.to_original(*frame.to_model(100.0, 40.0))
    assert (x, y) == pytest.approx((100.0, 40.0))


# ---------------------------------------------------------------- TIFF


def test_16bit_tiff_keeps_precision():
    pixels = gradient_u16()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    loaded = load_image(buffer.getvalue())
    assert (loaded.source_format, loaded.bit_depth) == ("tiff", 16)
    np.testing.assert_allclose(loaded.array, pixels / 65535.0, atol=1e-6)


def test_rgb_and_float_tiffs():
    gray = gradient_u8()
    rgb_buffer, float_buffer = io.BytesIO(), io.BytesIO()
    tifffile.imwrite(rgb_buffer, np.stack([gray] * 3, axis=-1), photometric="rgb")
    tifffile.imwrite(float_buffer, (gray / 255.0).astype(np.float32))
    rgb, floating = load_image(rgb_buffer.getvalue()), load_image(float_buffer.getvalue())
    np.testing.assert_allclose(rgb.array, gray / 255.0, atol=1e-5)
    assert "RGB converted to grayscale" in rgb.notes
    np.testing.assert_allclose(floating.array, gray / 255.0, atol=1e-6)


def test_min_is_white_tiff_is_inverted():
    gray = gradient_u8()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, gray, photometric="miniswhite")
    loaded = load_image(buffer.getvalue())
    np.testing.assert_allclose(loaded.array, 1.0 - gray / 255.0, atol=1e-6)
    assert "MinIsWhite inverted" in loaded.notes


def test_pillow_written_tiff_loads():
    pixels = gradient_u16()
    loaded = load_image(encode(Image.fromarray(pixels), "TIFF"))
    np.testing.assert_allclose(loaded.array, pixels / 65535.0, atol=1e-6)


# ---------------------------------------------------------------- DICOM


def test_dicom_without_voi_is_min_max_scaled_and_detected_by_preamble(tmp_path):
    path = tmp_path / "looks_like.png"  # the name lies; the DICM preamble decides
    path.write_bytes(dicom_bytes(make_dicom(ramp_u12())))
    loaded = load_image(path)
    assert (loaded.source_format, loaded.bit_depth) == ("dicom", 12)
    np.testing.assert_allclose(loaded.array, ramp_u12() / 4095.0, atol=1e-6)
    assert "no VOI window in file; min/max scaled" in loaded.notes
    assert loaded.dicom_info["Modality"] == "DX" and loaded.dicom_info["ViewPosition"] == "PA"
    assert loaded.dicom_info["PhotometricInterpretation"] == "MONOCHROME2"


def test_monochrome1_dicom_is_inverted():
    loaded = load_image(dicom_bytes(make_dicom(ramp_u12(), photometric="MONOCHROME1")))
    np.testing.assert_allclose(loaded.array, 1.0 - ramp_u12() / 4095.0, atol=1e-6)
    assert "MONOCHROME1 inverted" in loaded.notes
    assert loaded.array[:, 0].min() == 1.0  # stored 0 = white in MONOCHROME1


def test_rescale_then_window_are_applied():
    # stored 0..4095 → rescaled -1000..3095; window 1000/2000 maps 0..2000 onto the full range
    ds = make_dicom(ramp_u12(), RescaleSlope=1, RescaleIntercept=-1000, WindowCenter=1000, WindowWidth=2000)
    loaded = load_image(dicom_bytes(ds))
    value = ramp_u12().astype(np.float64) - 1000
    expected = np.clip(((value - 999.5) / 1999 + 0.5), 0, 1)  # DICOM LINEAR window (PS3.3 C.11.2.1.2.1)
    np.testing.assert_allclose(loaded.array, expected, atol=1e-5)
    assert "rescale slope 1 intercept -1000 applied" in loaded.notes
    assert "window 1000/2000 applied" in loaded.notes


def test_voi_lut_sequence_is_applied():
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    curve = [int(round(65535 * (v / 4095) ** 0.5)) for v in range(4096)]  # a square-root curve
    item.add_new(0x00283006, "US", curve)  # LUT Data
    ds = make_dicom(ramp_u12())
    ds.VOILUTSequence = [item]
    loaded = load_image(dicom_bytes(ds))
    np.testing.assert_allclose(loaded.array, np.sqrt(ramp_u12() / 4095.0), atol=1e-4)
    assert "VOI LUT applied" in loaded.notes


def test_invalid_window_falls_back_to_min_max_with_a_note():
    loaded = load_image(dicom_bytes(make_dicom(ramp_u12(), WindowCenter=100, WindowWidth=0)))
    np.testing.assert_allclose(loaded.array, ramp_u12() / 4095.0, atol=1e-6)
    assert any(note.startswith("VOI in file unusable") for note in loaded.notes)


def test_rgb_dicom_becomes_gray():
    gray = gradient_u8()
    ds = make_dicom(np.stack([gray] * 3, axis=-1), photometric="RGB", bits_stored=8)
    loaded = load_image(dicom_bytes(ds))
    np.testing.assert_allclose(loaded.array, gray / 255.0, atol=1e-5)
    assert "RGB converted to grayscale" in loaded.notes


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless"])
def test_compressed_dicom_round_trips(syntax):
    ds = make_dicom(ramp_u12(), WindowCenter=2048, WindowWidth=4096)
    ds.compress(getattr(pydicom.uid, syntax))
    data = dicom_bytes(ds)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == getattr(pydicom.uid, syntax)
    loaded = load_image(data)
    reference = load_image(dicom_bytes(make_dicom(ramp_u12(), WindowCenter=2048, WindowWidth=4096)))
    np.testing.assert_allclose(loaded.array, reference.array, atol=1e-6)


def test_jpeg_baseline_dicom_decodes_through_a_plugin():
    gray = gradient_u8()
    ds = make_dicom(gray, bits_stored=8)
    ds.PixelData = pydicom.encaps.encapsulate([encode(Image.fromarray(gray), "JPEG", quality=95)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    loaded = load_image(dicom_bytes(ds))
    assert np.abs(loaded.array - gray / 255.0).mean() < 0.02


def test_first_of_several_windows_is_used_and_an_empty_window_is_ignored():
    several = load_image(dicom_bytes(make_dicom(ramp_u12(), WindowCenter=[2048, 500], WindowWidth=[4096, 1000])))
    assert "window 2048/4096 applied" in several.notes
    empty = make_dicom(ramp_u12(), WindowCenter="", WindowWidth="")
    assert "no VOI window in file; min/max scaled" in load_image(dicom_bytes(empty)).notes


def test_no_patient_identifier_survives_loading():
    ds = make_dicom(ramp_u12(), ReferringPhysicianName="Who^Doctor", OtherPatientIDs="ALT-99")
    loaded = load_image(dicom_bytes(ds))
    text = repr(loaded) + repr(vars(loaded)) + repr(loaded.notes) + repr(loaded.dicom_info)
    for identifier in (PATIENT_NAME, "Doe", PATIENT_ID, ACCESSION, INSTITUTION, STUDY_UID, "19610203", "20240517",
                       "Who^Doctor", "ALT-99"):
        assert identifier not in text
    assert not any(isinstance(v, Dataset) for v in vars(loaded).values())


# ---------------------------------------------------------------- bad input


def assert_rejected(source, *words, **kwargs) -> str:
    with pytest.raises(ImageInputError) as caught:
        load_image(source, **kwargs)
    message = str(caught.value)
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def test_image_input_error_is_a_value_error():
    assert issubclass(ImageInputError, ValueError)


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_rejected(b"", "empty")
    assert_rejected(empty, "empty")
    assert_rejected(io.BytesIO(b""), "empty")


def test_missing_file_and_folder(tmp_path):
    assert_rejected(tmp_path / "nope.dcm", "no file", "nope.dcm")
    assert_rejected(tmp_path, "folder")


def test_text_mode_file_object(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(encode(Image.fromarray(gradient_u8()), "PNG"))
    with open(path, "r", encoding="latin-1") as handle:
        assert_rejected(handle, "binary")


def test_wrong_source_type_is_a_type_error():
    with pytest.raises(TypeError, match="ndarray"):
        load_image(np.zeros((64, 64)))


def test_not_an_image():
    assert_rejected(b"Patient report\nImpression: no acute findings.\n", "text file", "not an image")
    assert_rejected(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n" + bytes(200), "PDF")
    assert_rejected(bytes(range(256)) * 4, "not an image format")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_png_and_jpeg(fmt):
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256), np.uint8)), fmt)
    assert_rejected(data[: len(data) // 2], "damaged")


def test_truncated_tiff_and_dicom():
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, gradient_u16())
    assert_rejected(tiff.getvalue()[:-5000], "damaged")
    dicom = dicom_bytes(make_dicom(ramp_u12()))
    assert_rejected(dicom[:-1000], "damaged")
    assert_rejected(dicom[:200], "no pixel data", "incomplete")  # pydicom stops quietly at a cut header


def test_multi_frame_dicom():
    ds = make_dicom(np.stack([ramp_u12()] * 3))
    assert ds.NumberOfFrames == 3
    assert_rejected(dicom_bytes(ds), "3 frames", "single-frame")


def test_structured_report_and_pixel_less_dicom():
    report = make_dicom(None, SOPClassUID=BASIC_TEXT_SR)
    assert_rejected(dicom_bytes(report), "structured report", "not an image")
    no_pixels = make_dicom(None)
    assert_rejected(dicom_bytes(no_pixels), "no pixel data")


def test_encapsulated_pdf_dicom_is_not_an_image():
    ds = make_dicom(None, SOPClassUID="1.2.840.10008.5.1.4.1.1.104.1")
    assert_rejected(dicom_bytes(ds), "encapsulated document", "not an image")


def test_too_small():
    small = Image.fromarray(np.tile(np.arange(48, dtype=np.uint8), (MIN_SIDE, 1)))
    assert_rejected(encode(small, "PNG"), "48x64", str(MIN_SIDE))
    assert_rejected(dicom_bytes(make_dicom(ramp_u12(32, 128))), "128x32")


def test_too_many_pixels_is_stopped_before_decoding():
    assert MAX_PIXELS == 50_000_000
    assert_rejected(png_header_only(10_000, 6_000), "60,000,000", "50,000,000")
    assert_rejected(encode(Image.fromarray(gradient_u8()), "PNG"), "limit of 1,000", max_pixels=1_000)
    huge_dicom = make_dicom(ramp_u12())
    huge_dicom.Rows, huge_dicom.Columns = 20_000, 20_000  # header lies; pixel data never decoded
    assert_rejected(dicom_bytes(huge_dicom), "400,000,000")
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, gradient_u16())
    assert_rejected(tiff.getvalue(), "limit of 10,000", max_pixels=10_000)


def test_pillow_decompression_bomb_becomes_image_input_error():
    assert_rejected(png_header_only(100_000, 100_000), "safe limit", max_pixels=10**12)


def test_dicom_compression_without_decoder(monkeypatch):
    ds = make_dicom(ramp_u12())
    ds.compress(pydicom.uid.RLELossless)
    data = dicom_bytes(ds)

    class MissingDecoder:
        is_available = False
        missing_dependencies = ["pylibjpeg-rle - requires pylibjpeg-rle>=2"]

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: MissingDecoder())
    assert_rejected(data, "not installed", "pylibjpeg-rle", "uncompressed")


def test_dicom_with_unknown_compression():
    ds = make_dicom(ramp_u12())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no still-image decoder
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    assert_rejected(dicom_bytes_raw(ds), "cannot decode", "uncompressed")


def dicom_bytes_raw(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, little_endian=True, implicit_vr=False)
    return buffer.getvalue()


def test_multi_page_tiff_and_animated_gif():
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, np.stack([gradient_u8()] * 2))
    assert_rejected(tiff.getvalue(), "2 pages")
    frames = [Image.fromarray(gradient_u8()), Image.fromarray(255 - gradient_u8())]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert_rejected(gif, "2 frames")


def test_blank_image():
    assert_rejected(encode(Image.new("L", (128, 128), 7), "PNG"), "blank")
    assert_rejected(dicom_bytes(make_dicom(np.zeros((96, 128), np.uint16))), "blank")


def test_rejected_paths_are_named(tmp_path: Path):
    path = tmp_path / "scan.dcm"
    assert str(path) in assert_rejected(path, "check the path")


def test_corrupted_files_only_ever_raise_image_input_error():
    """Flipped bytes and cuts in every format give a clean image or ImageInputError, never another type."""
    rle = make_dicom(ramp_u12())
    rle.compress(pydicom.uid.RLELossless)
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, gradient_u16())
    valid = [encode(Image.fromarray(gradient_u16()), "PNG"), encode(Image.fromarray(gradient_u8()), "JPEG"),
             tiff.getvalue(), dicom_bytes(make_dicom(ramp_u12(), WindowCenter=9, WindowWidth=99)), dicom_bytes(rle)]
    rng = np.random.default_rng(0)
    for data in valid:
        for trial in range(30):
            damaged = bytearray(data[: rng.integers(1, len(data))] if trial % 2 else data)
            for position in rng.integers(0, len(damaged), size=trial % 5):
                damaged[position] = rng.integers(0, 256)
            try:
                load_image(bytes(damaged))
            except ImageInputError:
                pass
