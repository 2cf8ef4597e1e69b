"""The follow-up as a film: the change composited onto the prior at its own resolution and units, exported labelled.

Invariants: outside the edit region W the output is the prior bit for bit (16-bit PNG and DICOM, padded and
cropped frames, non-square films); inside W it is prior + the resampled change; exports keep the film's columns,
spacing, bit depth and window and add the label band below the film; no full-resolution square canvas is built.
"""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from legend_demo import ImageInputError, LesionPoint, load_image
from legend_demo.method.composite import composite_change, film_sigma_px, model_view_film
from legend_demo.method.edit_region import OUTER, EditRegion, region_weights, token_weights
from legend_demo.core.export import save_film_dicom, save_film_png

ENGINE, CHECKPOINT = "test-engine", "test-checkpoint"


def film_pixels(width: int, height: int, top: int) -> np.ndarray:
    """A smooth chest-like film in stored units 0…top, (height, width)."""
    y, x = np.mgrid[0:height, 0:width]
    values = 0.25 + 0.5 * np.exp(-(((x - width / 2) / width) ** 2 + ((y - height / 2) / height) ** 2) * 4)
    values += 0.1 * np.sin(x / 7.0) * np.cos(y / 11.0)  # texture, so every stored value matters
    return np.round(np.clip(values, 0, 1) * top).astype(np.uint16 if top > 255 else np.uint8)


def png16(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(film_pixels(width, height, 4095), "I;16").save(buffer, format="PNG")  # 12-bit data in 16 bits
    return buffer.getvalue()


def dicom_film(width: int = 300, height: int = 260, monochrome1: bool = True) -> bytes:
    """A CR-like DICOM: 12 bits stored, MONOCHROME1, window, pixel spacing, patient orientation."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CR", "Doe^Jane", "MRN-1"
    ds.set_pixel_data(film_pixels(width, height, 4095), "MONOCHROME1" if monochrome1 else "MONOCHROME2", 12)
    ds.WindowCenter, ds.WindowWidth = 2048, 3000
    ds.PixelSpacing = [0.143, 0.143]
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.PatientOrientation = ["L", "F"]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def bump(side: int, cx: float, cy: float, amplitude: float = 0.2, radius: float = 6.0) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] + 0.5
    return (amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))).astype(np.float32)


def engine_rows(prior, side: int, mode: str, at: tuple[float, float]):
    """What an engine would return: the prior's model view as source row, plus a bump as edit row."""
    view, frame = prior.framed(side, mode)
    cx, cy = frame.to_model(*at)
    return view, np.clip(view + bump(side, cx, cy), 0, 1), frame


@pytest.mark.parametrize("source", ["png16", "dicom"])
@pytest.mark.parametrize("size, mode", [((300, 200), "pad"), ((200, 300), "pad"), ((300, 200), "crop")])
def test_outside_the_edit_region_the_composite_is_the_prior_bit_for_bit(source, size, mode):
    prior = load_image(png16(*size) if source == "png16" else dicom_film(*size))
    point = LesionPoint(size[0] * 0.5, size[1] * 0.55)
    source_view, edit_view, frame = engine_rows(prior, 128, mode, (point.x, point.y))
    film = composite_change(prior, source_view, edit_view, frame, [point], 0.10, EditRegion())
    outside = film.region_mask() == 0
    assert film.stored.dtype == prior.stored.dtype and film.display.shape == prior.array.shape
    assert outside.any() and np.array_equal(film.stored[outside], prior.stored[outside])
    assert np.array_equal(film.display[outside], prior.array[outside])
    assert film.stored[~outside].astype(int).sum() != prior.stored[~outside].astype(int).sum()  # something changed


def test_inside_the_region_the_change_is_rendered_as_an_opacity_where_the_engine_drew_it():
    """Issue 19 replaced "prior + resampled change" by the opacity model (legend_demo/method/opacity.py): the change is
    brighter where the engine drew it, peaks at the point, never overshoots the film's dense tissue, and is zero
    where the engine drew nothing."""
    prior = load_image(png16(320, 240))
    point = LesionPoint(70.0, 60.0)  # a darker part of the film
    source_view, edit_view, frame = engine_rows(prior, 128, "pad", (point.x, point.y))
    film = composite_change(prior, source_view, edit_view, frame, [point], 0.10, EditRegion())
    got = film.display - prior.array
    assert got.max() > 0.02 and got.min() >= -0.02  # brighter (vessels may fade a little), nowhere darker
    y, x = np.mgrid[0:240, 0:320] + 0.5
    weight = np.clip(got, 0, None)
    cx, cy = (x * weight).sum() / weight.sum(), (y * weight).sum() / weight.sum()
    assert np.hypot(cx - point.x, cy - point.y) <= 16  # lands where the point is (denser over darker film)
    assert film.display.max() <= max(prior.array.max(), 1.0) and np.all(film.stored <= prior.stored.max())
    assert film.params["opacity_model"]["domain"].startswith("stored")


def test_region_reaches_exactly_outer_sigma_and_scales_with_the_slider():
    point = [LesionPoint(50.0, 50.0)]
    weights = region_weights(point, (0, 0, 100, 100), sigma_px=10.0, scale=1.0)
    y, x = np.mgrid[0:100, 0:100] + 0.5
    distance = np.hypot(x - 50, y - 50)
    assert np.all(weights[distance >= OUTER * 10] == 0) and np.all(weights[distance <= 15] == 1)
    wider = region_weights(point, (0, 0, 100, 100), sigma_px=10.0, scale=1.5)
    assert (wider > 0).sum() > (weights > 0).sum()
    with pytest.raises(ValueError, match="scale"):
        EditRegion(scale=9.0).check()


def test_no_points_means_the_prior_unchanged():
    prior = load_image(png16(200, 200))
    view, frame = prior.framed(128)
    film = composite_change(prior, view, np.clip(view + 0.3, 0, 1), frame, [], 0.1, EditRegion())
    assert np.array_equal(film.stored, prior.stored) and film.box is None


def test_model_view_mode_is_the_whole_upsampled_edit_row():
    prior = load_image(png16(200, 150))
    view, frame = prior.framed(128)
    film = model_view_film(prior, np.clip(view + 0.1, 0, 1), frame)
    assert film.display.shape == (150, 200) and film.mode == "model-view"
    assert np.median(film.display - prior.array) == pytest.approx(0.1, abs=0.02)


def test_film_png_keeps_the_16bit_stored_values_and_adds_the_band_below(tmp_path):
    prior = load_image(png16(300, 220))
    point = LesionPoint(120, 100)
    source_view, edit_view, frame = engine_rows(prior, 128, "pad", (point.x, point.y))
    film = composite_change(prior, source_view, edit_view, frame, [point], 0.1, EditRegion())
    path = save_film_png(film, prior, tmp_path / "f.png", engine=ENGINE, checkpoint=CHECKPOINT)
    with Image.open(path) as written:
        pixels = np.asarray(written)
        chunks = dict(written.text)
    assert pixels.dtype == np.uint16 and pixels.shape[1] == 300 and pixels.shape[0] > 220
    assert np.array_equal(pixels[:220], film.stored)  # the film rows are the film, bit for bit
    outside = film.region_mask() == 0
    assert np.array_equal(pixels[:220][outside], prior.stored[outside])
    assert "SYNTHETIC" in chunks["Description"] and ENGINE in chunks["Description"]


def test_film_dicom_keeps_columns_spacing_depth_window_and_orientation(tmp_path):
    prior = load_image(dicom_film(300, 260))
    point = LesionPoint(140, 150)
    source_view, edit_view, frame = engine_rows(prior, 128, "pad", (point.x, point.y))
    film = composite_change(prior, source_view, edit_view, frame, [point], 0.1, EditRegion())
    ds = pydicom.dcmread(save_film_dicom(film, prior, tmp_path / "f.dcm", engine=ENGINE, checkpoint=CHECKPOINT))
    assert ds.Columns == 300 and ds.Rows > 260 and ds.BitsStored == 12 and ds.PhotometricInterpretation == "MONOCHROME1"
    assert [float(v) for v in ds.PixelSpacing] == [0.143, 0.143] and [float(v) for v in ds.ImagerPixelSpacing] == [0.15, 0.15]
    assert float(ds.WindowCenter) == 2048 and float(ds.WindowWidth) == 3000 and list(ds.PatientOrientation) == ["L", "F"]
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.ConversionType == "SYN" and ds.BurnedInAnnotation == "YES"
    assert "MRN-1" not in str(ds) and "Doe" not in str(ds) and str(ds.PatientName) == "SYNTHETIC^LEGEND"
    pixels = ds.pixel_array
    assert np.array_equal(pixels[:260], film.stored)  # label pixels never overlap film pixels
    outside = film.region_mask() == 0
    assert np.array_equal(pixels[:260][outside], prior.stored[outside])
    reloaded = load_image(tmp_path / "f.dcm")  # displays like the prior: same window and polarity
    np.testing.assert_allclose(reloaded.array[:260][outside], prior.array[outside], atol=1e-6)


def test_token_weights_follow_the_points_on_the_grid():
    weights = token_weights([LesionPoint(32.0, 96.0)], side=128, grid=(16, 16), sigma_ratio=0.1, scale=1.0)
    assert weights.shape == (16, 16) and weights[12, 4] == 1.0 and weights[2, 14] == 0.0


def test_a_stripe_is_refused_before_it_is_decoded():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((30000, 64), np.uint8)).save(buffer, format="PNG")
    tracemalloc.start()
    with pytest.raises(ImageInputError, match="times longer than wide"):
        load_image(buffer.getvalue())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 2**20  # refused from the header: far below the 1.9 MB × 4-byte decode, let alone 30000²


def test_framing_a_long_film_never_builds_the_square_canvas():
    film = np.random.default_rng(0).random((2000, 7900)).astype(np.float32)  # 63 MB; its square would be 250 MB
    from legend_demo.core.geometry import SquareFrame

    frame = SquareFrame.fit((7900, 2000), 128, "pad")
    tracemalloc.start()
    view = frame.apply(film)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert view.shape == (128, 128) and peak < 0.6 * film.nbytes


def test_sigma_in_film_pixels_matches_the_token_grid_prior():
    prior = load_image(png16(400, 300))
    _, frame = prior.framed(128)
    assert film_sigma_px(frame, 0.1) == pytest.approx(0.1 * 400)  # ratio · square


def test_smoothing_the_change_removes_token_blocks_and_keeps_the_prior_outside():
    from legend_demo.evaluation.case_metrics import tiling_ratio

    prior = load_image(png16(256, 256))
    view, frame = prior.framed(128)
    blocks = np.kron(np.random.default_rng(0).random((16, 16)) * 0.1, np.ones((8, 8))).astype(np.float32)
    edit = np.clip(view + blocks, 0, 1)
    point = [LesionPoint(128.0, 128.0)]
    raw = composite_change(prior, view, edit, frame, point, 0.3, EditRegion(scale=2.0))
    smooth = composite_change(prior, view, edit, frame, point, 0.3, EditRegion(scale=2.0), smoothing_px=4.0)
    inside = raw.region_mask() == 1
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    raw_change, smooth_change = (f.display - prior.array for f in (raw, smooth))
    assert tiling_ratio(raw_change[crop], 16) > 2 * tiling_ratio(smooth_change[crop], 16)  # 8 model px = 16 film px
    outside = smooth.region_mask() == 0
    assert np.array_equal(smooth.stored[outside], prior.stored[outside])
    assert smooth.params["change_smoothing_model_px"] == 4.0
    with pytest.raises(ValueError, match="smoothing_px"):
        composite_change(prior, view, edit, frame, point, 0.3, EditRegion(), smoothing_px=-1)
