"""Load a radiograph (PNG, JPEG, TIFF, DICOM) into a float32 (H, W) array in [0, 1], dense tissue bright.

Limits (all checked on the header, before any pixel is decoded, so decompression bombs stop early):
  * MIN_SIDE = 64 px: a smaller image cannot be a radiograph worth following up.
  * MAX_PIXELS = 50 megapixels (W * H), overridable per call with `max_pixels=`.
  * MAX_ASPECT = 4: long-length films reach about 3.6:1; a stripe beyond 4:1 is not a radiograph.

Intensity: values are divided by the full range of their bit depth (8-bit / 255, 16-bit / 65535, DICOM by
the output range of its VOI window or LUT, or min/max when it has neither). If the result then spans less
than LOW_RANGE_SPAN of [0, 1] (e.g. 12-bit data in a 16-bit PNG) it is stretched to its own min/max, and a
note says so. A uniform image is rejected. Every such step is recorded in `LoadedImage.notes`.

Privacy: a DICOM's identifiers (names, IDs, dates, UIDs, institution...) are never copied; only the
technical facts in DICOM_INFO_KEYWORDS are kept, in `LoadedImage.dicom_info`, and the display attributes in
DICOM_DISPLAY_KEYWORDS (window, rescale, spacing, bit depth), in `LoadedImage.dicom_display`, so an export can
keep the film's own geometry and look.

Stored units: single-channel integer images also keep their stored values (`LoadedImage.stored`), so a follow-up
can be written back in the film's own units (legend_demo.core.intensity).

Every bad input raises `ImageInputError` with a message a clinician can act on.
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, Any, Union

import numpy as np

from .errors import ImageInputError
from .geometry import FrameMode, SquareFrame

MAX_PIXELS = 50_000_000
MIN_SIDE = 64
LOW_RANGE_SPAN = 0.25
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")
DICOM_INFO_KEYWORDS = (
    "Modality", "PhotometricInterpretation", "ViewPosition", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "SamplesPerPixel", "Rows", "Columns",
    "PatientOrientation", "ImageLaterality", "BodyPartExamined",  # orientation and view (grounding/orientation.py)
)  # technical, non-identifying facts only
DICOM_DISPLAY_KEYWORDS = (
    "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction",
    "VOILUTSequence", "PixelSpacing", "ImagerPixelSpacing", "PixelSpacingCalibrationType", "PatientOrientation",
)  # how the stored values are shown and how big a pixel is; nothing identifying
MAX_ASPECT = 4.0
PILLOW_FORMATS = ["PNG", "JPEG", "BMP", "GIF", "WEBP", "JPEG2000"]  # never EPS/PDF and friends

ImageSource = Union[str, PathLike, bytes, bytearray, memoryview, IO[bytes]]

_NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.88.": "a structured report or key-object note",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state (display settings, no image)",
    "1.2.840.10008.5.1.4.1.1.104.": "an encapsulated document (PDF/CDA)",
    "1.2.840.10008.5.1.4.1.1.9.": "a waveform (e.g. ECG)",
    "1.2.840.10008.5.1.4.1.1.66": "raw data, a registration or a segmentation",
    "1.2.840.10008.5.1.4.1.1.481.": "a radiotherapy object",
    "1.2.840.10008.1.3.10": "a DICOMDIR (a media index)",
}
_RT_IMAGE_SOP = "1.2.840.10008.5.1.4.1.1.481.1"


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == is ambiguous
class LoadedImage:
    """A loaded radiograph: `array` float32 (H, W) in [0, 1], dense tissue bright, plus how it was made."""

    array: np.ndarray
    original_size: tuple[int, int]  # (W, H) as loaded (after any EXIF rotation); framing is in SquareFrame
    source_format: str  # "png", "jpeg", "tiff", "dicom", ...
    bit_depth: int
    notes: list[str] = field(default_factory=list)
    dicom_info: dict[str, Any] = field(default_factory=dict)
    stored: np.ndarray | None = None  # (H, W) stored integer values of a single-channel film, else None
    stored_signed: bool = False
    dicom_display: dict[str, Any] = field(default_factory=dict)  # DICOM_DISPLAY_KEYWORDS present in the file

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of `array`."""
        return self.array.shape[1], self.array.shape[0]

    def framed(self, side: int = 256, mode: FrameMode = "pad") -> tuple[np.ndarray, SquareFrame]:
        """Square (side, side) float32 model input and the frame that maps points both ways."""
        frame = SquareFrame.fit(self.size, side, mode)
        return frame.apply(self.array), frame

    def intensity_map(self):
        """The film's stored → display map (legend_demo.core.intensity.IntensityMap), or None without stored values.

        Read off the pixels once and kept (the composite and both exports use it)."""
        from .intensity import IntensityMap

        if self.stored is None:
            return None
        if "_intensity" not in self.__dict__:  # frozen dataclass: cache through __dict__
            self.__dict__["_intensity"] = IntensityMap.from_pixels(self.stored, self.array, self.bit_depth, self.stored_signed)
        return self.__dict__["_intensity"]

    def __repr__(self) -> str:
        return (
            f"LoadedImage(size={self.size}, source_format={self.source_format!r}, bit_depth={self.bit_depth}, "
            f"notes={self.notes!r}, dicom_info={self.dicom_info!r})"
        )


@dataclass
class _Decoded:
    """Pixels normalised to [0, 1] (may still be colour) and what was done to get there."""

    array: np.ndarray  # (H, W) or (H, W, 3) float
    source_format: str
    bit_depth: int
    notes: list[str]
    dicom_info: dict[str, Any] = field(default_factory=dict)
    stored: np.ndarray | None = None  # (H, W) integer stored values when single-channel
    stored_signed: bool = False
    dicom_display: dict[str, Any] = field(default_factory=dict)


def load_image(source: ImageSource, *, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read a path, bytes or binary file object; return a grayscale [0, 1] radiograph or raise ImageInputError."""
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    data = _read_source(source)
    decoded = _decode(data, max_pixels)
    array, notes = _to_gray(decoded.array), list(decoded.notes)
    if decoded.array.ndim == 3:
        notes.append("RGB converted to grayscale")
    array = _stretch_if_low_range(array, notes)
    height, width = array.shape
    stored = decoded.stored if decoded.array.ndim == 2 and _integer(decoded.stored) else None
    return LoadedImage(
        array=np.ascontiguousarray(array, dtype=np.float32),
        original_size=(width, height),
        source_format=decoded.source_format,
        bit_depth=decoded.bit_depth,
        notes=notes,
        dicom_info=decoded.dicom_info,
        stored=stored,
        stored_signed=decoded.stored_signed,
        dicom_display=decoded.dicom_display,
    )


def _integer(values: np.ndarray | None) -> bool:
    return values is not None and values.ndim == 2 and values.dtype.kind in "iu" and values.dtype.itemsize <= 2


# ---------------------------------------------------------------- reading the bytes


def _read_source(source: ImageSource) -> bytes:
    """Bytes of a path, bytes-like or binary file object; ImageInputError when missing or empty."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, PathLike)):
        data = _read_path(Path(source))
    elif hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise ImageInputError("The file was opened as text; open it in binary mode ('rb') and try again.")
    else:
        raise TypeError(f"image source must be a path, bytes or a binary file object, got {type(source).__name__}")
    if not data:
        raise ImageInputError("The image file is empty (0 bytes). Export the radiograph again and re-upload it.")
    return data


def _read_path(path: Path) -> bytes:
    if not path.exists():
        raise ImageInputError(f"No file at {str(path)!r}. Check the path and try again.")
    if path.is_dir():
        raise ImageInputError(f"{str(path)!r} is a folder, not an image file. Choose a single image file.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageInputError(
            f"Could not read {str(path)!r} ({exc.strerror}). Check that the file is readable."
        ) from exc


# ---------------------------------------------------------------- format dispatch


def _decode(data: bytes, max_pixels: int) -> _Decoded:
    """Pick the decoder from the file's magic bytes (never its name)."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return _decode_dicom(data, max_pixels)
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _decode_tiff(data, max_pixels)
    if data[:5] == b"%PDF-":
        raise ImageInputError("This is a PDF document, not an image. Export the radiograph itself as DICOM or PNG.")
    return _decode_pillow(data, max_pixels)


def _check_dimensions(width: int, height: int, max_pixels: int) -> None:
    """Reject images too small to be a radiograph or larger than the pixel limit (header check)."""
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            f"The image is {width}x{height} pixels; a radiograph needs at least {MIN_SIDE} pixels on each side. "
            "Upload the full-resolution image, not a thumbnail or icon."
        )
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,}. "
            "Downsample it (e.g. to 2048 pixels on the long side) and upload it again."
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageInputError(
            f"The image is {width}x{height} pixels, {max(width, height) / min(width, height):.1f} times longer than "
            f"wide; radiographs are at most {MAX_ASPECT:g}:1. Upload the whole film, not a strip or a montage."
        )


def _corrupt(kind: str, exc: BaseException) -> ImageInputError:
    return ImageInputError(
        f"The {kind} file is damaged or incomplete and cannot be decoded ({type(exc).__name__}: {exc}). "
        "Export or download it again."
    )


def _not_an_image(data: bytes) -> ImageInputError:
    head = data[:512]
    if _looks_like_text(head):
        return ImageInputError(
            "This is a text file, not an image. Upload the radiograph as DICOM, PNG, JPEG or TIFF."
        )
    return ImageInputError(
        "This file is not an image format the app can read. Upload the radiograph as DICOM, PNG, JPEG or TIFF."
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


# ---------------------------------------------------------------- PNG / JPEG / other Pillow formats


def _decode_pillow(data: bytes, max_pixels: int, formats: list[str] = PILLOW_FORMATS) -> _Decoded:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise _not_an_image(data) from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"The image declares more pixels than the safe limit ({exc}). "
            "Downsample it (e.g. to 2048 pixels on the long side) and upload it again."
        ) from None
    except Exception as exc:  # a malformed header: anything Pillow raises is bad data here
        raise _corrupt("image", exc) from exc
    with image:
        _check_dimensions(*image.size, max_pixels)
        fmt = (image.format or "image").lower()
        try:
            upright, notes = _load_upright(image)
        except ImageInputError:
            raise
        except Exception as exc:  # truncated or corrupt pixel data
            raise _corrupt(fmt.upper(), exc) from exc
        array, bit_depth, mode_notes = _array_from_pillow(upright)
        stored = _pillow_stored(upright)
    return _Decoded(array, fmt, bit_depth, notes + mode_notes, stored=stored)


def _pillow_stored(image: Any) -> np.ndarray | None:
    """Stored values of 8-bit, 16-bit and 16-bit-range 32-bit grayscale images; None for other modes."""
    if image.mode in ("L", "I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint8 if image.mode == "L" else np.uint16)
    if image.mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.uint8)
    if image.mode == "I":
        values = np.asarray(image)
        return values.astype(np.uint16) if values.min() >= 0 and values.max() <= 65535 else None
    return None


def _load_upright(image: Any) -> tuple[Any, list[str]]:
    """Decode a single-frame Pillow image and apply its EXIF orientation."""
    from PIL import Image, ImageOps

    if getattr(image, "n_frames", 1) > 1:
        raise ImageInputError(
            f"The image holds {image.n_frames} frames (an animation or stack). Upload a single radiograph."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit already applied
        image.load()
    rotated = image.getexif().get(0x0112, 1) not in (None, 1)  # EXIF Orientation tag
    return ImageOps.exif_transpose(image), ["EXIF orientation applied"] if rotated else []


def _array_from_pillow(image: Any) -> tuple[np.ndarray, int, list[str]]:
    """Pillow image of any mode → ([0, 1] array (H, W) or (H, W, 3), bit depth, notes)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image, dtype=np.float64) / 65535.0, 16, []
    if mode == "I":
        return _int32_to_unit(np.asarray(image))
    if mode == "F":
        return _float_to_unit(np.asarray(image, dtype=np.float64), 32)
    if mode == "1":
        return np.asarray(image, dtype=np.float64), 1, []
    if mode == "L":
        return np.asarray(image, dtype=np.float64) / 255.0, 8, []
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.float64) / 255.0, 8, ["alpha channel dropped"]
    notes = []
    if mode in ("P", "PA"):
        notes.append("palette expanded")
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "La", "RGBa"):
        notes.append("alpha channel dropped")
    rgb = image.convert("RGB") if mode != "RGB" else image
    return np.asarray(rgb, dtype=np.float64) / 255.0, 8, notes


def _int32_to_unit(values: np.ndarray) -> tuple[np.ndarray, int, list[str]]:
    """32-bit integer pixels: 16-bit range when they fit in it, else their own min/max."""
    low, high = int(values.min()), int(values.max())
    if 0 <= low and high <= 65535:
        return values.astype(np.float64) / 65535.0, 16, []
    return _min_max(values.astype(np.float64)), 32, [f"32-bit values {low}..{high} scaled by min/max"]


def _float_to_unit(values: np.ndarray, bit_depth: int) -> tuple[np.ndarray, int, list[str]]:
    """Floating-point pixels: kept when already in [0, 1], else scaled by their own min/max."""
    if not np.all(np.isfinite(values)):
        raise ImageInputError("The image contains invalid (NaN or infinite) pixel values. Export it again.")
    low, high = float(values.min()), float(values.max())
    if 0.0 <= low and high <= 1.0:
        return values, bit_depth, []
    return _min_max(values), bit_depth, [f"float values {low:g}..{high:g} scaled by min/max"]


# ---------------------------------------------------------------- TIFF


def _decode_tiff(data: bytes, max_pixels: int) -> _Decoded:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            _check_tiff_page(tif, page, max_pixels)
            values = page.asarray()
            min_is_white = page.photometric == tifffile.PHOTOMETRIC.MINISWHITE
    except ImageInputError:
        raise
    except Exception as exc:  # tifffile raises many types; Pillow may still read it (e.g. JPEG-in-TIFF)
        return _decode_tiff_with_pillow(data, max_pixels, exc)
    array, bit_depth, notes = _tiff_to_unit(values)
    if min_is_white:
        array, notes = 1.0 - array, notes + ["MinIsWhite inverted"]
    stored = values[..., 0] if values.ndim == 3 and values.shape[2] <= 2 else values
    return _Decoded(array, "tiff", bit_depth, notes, stored=stored, stored_signed=values.dtype.kind == "i")


def _decode_tiff_with_pillow(data: bytes, max_pixels: int, tifffile_error: Exception) -> _Decoded:
    try:
        return _decode_pillow(data, max_pixels, formats=["TIFF"])
    except ImageInputError:
        raise _corrupt("TIFF", tifffile_error) from tifffile_error


def _check_tiff_page(tif: Any, page: Any, max_pixels: int) -> None:
    if len(tif.pages) > 1:
        raise ImageInputError(f"The TIFF holds {len(tif.pages)} pages. Upload a single radiograph per file.")
    height, width = page.imagelength, page.imagewidth
    _check_dimensions(width, height, max_pixels)
    samples = page.samplesperpixel
    if samples not in (1, 2, 3, 4) or getattr(page, "imagedepth", 1) > 1:
        raise ImageInputError(f"The TIFF has an unsupported layout (shape {page.shape}). Save it as a 2-D image.")


def _tiff_to_unit(values: np.ndarray) -> tuple[np.ndarray, int, list[str]]:
    """TIFF pixels (H, W[, S]) → ([0, 1] (H, W) or (H, W, 3), bit depth, notes)."""
    notes: list[str] = []
    if values.ndim == 3:
        channels = values.shape[2]
        if channels in (2, 4):
            notes.append("alpha channel dropped")
        values = values[..., 0] if channels <= 2 else values[..., :3]
    if values.dtype.kind == "f":
        array, bit_depth, more = _float_to_unit(values.astype(np.float64), values.dtype.itemsize * 8)
    elif values.dtype.kind == "b":
        array, bit_depth, more = values.astype(np.float64), 1, []
    elif values.dtype.kind == "u":
        bit_depth = values.dtype.itemsize * 8
        array, more = values.astype(np.float64) / float(2**bit_depth - 1), []
    else:
        low, high = int(values.min()), int(values.max())
        array, bit_depth = _min_max(values.astype(np.float64)), values.dtype.itemsize * 8
        more = [f"signed values {low}..{high} scaled by min/max"]
    return array, bit_depth, notes + more


# ---------------------------------------------------------------- DICOM


def _decode_dicom(data: bytes, max_pixels: int) -> _Decoded:
    """DICOM → [0, 1]; pydicom's warnings are silenced because they can quote identifying values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _decode_dicom_quietly(data, max_pixels)


def _decode_dicom_quietly(data: bytes, max_pixels: int) -> _Decoded:
    ds = _read_dicom(data)
    try:
        return _dicom_to_unit(ds, max_pixels)
    except ImageInputError:
        raise
    except Exception as exc:  # malformed header values, truncated pixel data, decoder failures, ...
        raise _corrupt("DICOM", exc) from exc


def _dicom_to_unit(ds: Any, max_pixels: int) -> _Decoded:
    _check_dicom_is_single_image(ds, max_pixels)
    info = {k: _plain(ds.get(k)) for k in DICOM_INFO_KEYWORDS if ds.get(k) not in (None, "")}
    raw = _dicom_pixels(ds)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)))
    if int(ds.get("SamplesPerPixel", 1)) == 3 or ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        array, notes = _dicom_colour(raw, ds)
        return _Decoded(array, "dicom", bits, notes, info)
    array, notes = _dicom_grayscale(raw, ds)
    display = {k: copy.deepcopy(ds[k].value) for k in DICOM_DISPLAY_KEYWORDS if k in ds and ds[k].value not in (None, "")}
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    return _Decoded(array, "dicom", bits, notes, info, stored=raw, stored_signed=signed, dicom_display=display)


def _read_dicom(data: bytes) -> Any:
    import pydicom

    try:
        return pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # InvalidDicomError, struct/EOF errors on truncated headers, ...
        raise _corrupt("DICOM", exc) from exc


def _check_dicom_is_single_image(ds: Any, max_pixels: int) -> None:
    """Reject non-image SOP classes, files without pixels, multi-frame objects and bad sizes (header only)."""
    sop = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
    for prefix, what in _NON_IMAGE_SOP_PREFIXES.items():
        if sop.startswith(prefix) and sop != _RT_IMAGE_SOP:
            raise ImageInputError(
                f"This DICOM file is {what} ({_uid_name(sop)}), not an image. "
                "Export the radiograph itself (CR/DX image) from the PACS."
            )
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageInputError(
            f"This DICOM file has no pixel data ({_uid_name(sop) or 'unknown object type'}): it is not an image, "
            "or the file is incomplete. Export the radiograph image itself again from the PACS."
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageInputError(
            f"This DICOM file holds {frames} frames (a multi-frame series). "
            "Export a single-frame radiograph (one projection) and upload that."
        )
    if "Rows" not in ds or "Columns" not in ds:
        raise _corrupt("DICOM", KeyError("Rows/Columns missing"))
    _check_dimensions(int(ds.Columns), int(ds.Rows), max_pixels)


def _dicom_pixels(ds: Any) -> np.ndarray:
    """Decoded stored values; a clear message when the compression cannot be decoded here."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise ImageInputError(
                f"The DICOM pixels use a compression this app cannot decode ({_uid_name(syntax)}). "
                "Ask for an uncompressed (Explicit VR Little Endian) export."
            ) from None
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
            raise ImageInputError(
                f"The DICOM pixels are compressed ({_uid_name(syntax)}) and the decoder is not installed "
                f"({missing}). Install it, or ask for an uncompressed export."
            )
    try:
        return np.asarray(ds.pixel_array)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pylibjpeg-rle panics on corrupt runs (pyo3 PanicException, a BaseException)
        raise _corrupt("DICOM", exc) from exc


def _dicom_grayscale(raw: np.ndarray, ds: Any) -> tuple[np.ndarray, list[str]]:
    """Modality LUT, then VOI LUT or window (else min/max), then MONOCHROME1 inversion."""
    from pydicom.pixels import apply_modality_lut

    notes: list[str] = []
    values = apply_modality_lut(raw, ds)
    if "ModalityLUTSequence" in ds:
        notes.append("Modality LUT applied")
    elif _rescale(ds) != (1.0, 0.0):
        slope, intercept = _rescale(ds)
        notes.append(f"rescale slope {slope:g} intercept {intercept:g} applied")
    array = _apply_voi(np.asarray(values), ds, notes)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        array = 1.0 - array
        notes.append("MONOCHROME1 inverted")
    return array, notes


def _apply_voi(values: np.ndarray, ds: Any, notes: list[str]) -> np.ndarray:
    """VOI LUT or window mapped to [0, 1] by the transform's own output range; min/max when absent or invalid."""
    try:
        voi = _voi_scaled(values, ds)
    except Exception as exc:  # an invalid window or LUT in the file: fall back, and say so
        notes.append(f"VOI in file unusable ({exc}); min/max scaled")
        return _min_max(values.astype(np.float64))
    if voi is None:
        notes.append("no VOI window in file; min/max scaled")
        return _min_max(values.astype(np.float64))
    scaled, note = voi
    notes.append(note)
    return scaled


def _voi_scaled(values: np.ndarray, ds: Any) -> tuple[np.ndarray, str] | None:
    """(values through the VOI LUT or window, scaled to [0, 1], note), or None when the file has no VOI."""
    from pydicom.pixels import apply_voi_lut

    kind = _voi_kind(ds)
    if kind is None:
        return None
    out = apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64)
    low, high = _voi_output_range(ds, kind)
    return np.clip((out - low) / (high - low), 0.0, 1.0), kind  # out lies in [low, high] by construction


def _voi_kind(ds: Any) -> str | None:
    if ds.get("VOILUTSequence"):
        return "VOI LUT applied"
    if ds.get("WindowCenter") not in (None, "") and ds.get("WindowWidth") not in (None, ""):
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        return f"window {center:g}/{width:g} applied"
    return None


def _voi_output_range(ds: Any, kind: str) -> tuple[float, float]:
    """(low, high) the VOI transform can output: the LUT's entries, or the window applied to ±huge inputs."""
    from pydicom.pixels import apply_voi_lut

    if kind == "VOI LUT applied":
        first_entries, first_input = ds.VOILUTSequence[0].LUTDescriptor[:2]
        probe = np.arange(first_input, first_input + (first_entries or 65536), dtype=np.int64)
    else:
        probe = np.array([-1e15, 1e15])
    out = apply_voi_lut(probe, ds, prefer_lut=True).astype(np.float64)
    low, high = float(out.min()), float(out.max())
    if high <= low:
        raise ValueError(f"VOI output range {low:g}..{high:g} is empty")
    return low, high


def _dicom_colour(raw: np.ndarray, ds: Any) -> tuple[np.ndarray, list[str]]:
    """Colour DICOM (RGB, YBR already converted by pydicom, or palette) → [0, 1] RGB."""
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return _min_max(apply_color_lut(raw, ds).astype(np.float64)), ["palette expanded"]
    bits = int(ds.get("BitsStored", 8))
    return raw.astype(np.float64) / float(2**bits - 1), []


def _rescale(ds: Any) -> tuple[float, float]:
    return float(ds.get("RescaleSlope", 1.0) or 1.0), float(ds.get("RescaleIntercept", 0.0) or 0.0)


def _first(value: Any) -> float:
    """First value of a possibly multi-valued DS element."""
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, MultiValue) else float(value)


def _plain(value: Any) -> Any:
    """A pydicom element value as a plain int or str (a multi-valued one as DICOM writes it: 'L\\F')."""
    from pydicom.multival import MultiValue

    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return int(value) if isinstance(value, int) else str(value)


def _uid_name(uid: Any) -> str:
    from pydicom.uid import UID

    return UID(str(uid)).name if uid else ""


# ---------------------------------------------------------------- intensity


def _to_gray(array: np.ndarray) -> np.ndarray:
    """(H, W, 3) [0, 1] RGB → (H, W) luma; (H, W) passes through."""
    if array.ndim == 2:
        return array
    return array[..., :3] @ np.asarray(LUMA_WEIGHTS)


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        raise _uniform(low)
    return (values - low) / (high - low)


def _stretch_if_low_range(array: np.ndarray, notes: list[str]) -> np.ndarray:
    """Stretch to min/max when the image uses less than LOW_RANGE_SPAN of [0, 1]; reject a uniform image."""
    low, high = float(array.min()), float(array.max())
    if high <= low:
        raise _uniform(low)
    if high - low < LOW_RANGE_SPAN:
        notes.append(f"low dynamic range {low:.4f}..{high:.4f} stretched to 0..1")
        return (array - low) / (high - low)
    return array


def _uniform(value: float) -> ImageInputError:
    return ImageInputError(
        f"The image is blank: every pixel has the same value ({value:g}). Check that the right file was exported."
    )
