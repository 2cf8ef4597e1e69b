"""Study images: reading (legend_demo.image_io.load_image), file fingerprints, and the blinded display copies.

Blinding (issue 12 §6): every image of a case is shown at ONE size and format — the prior's aspect ratio with
a long side of DISPLAY_LONG_SIDE pixels, 8-bit grayscale PNG with no text, time or colour chunks — so neither
the pixel size of an engine's output, its file format, its metadata nor its file name tells a reader the source.
An image whose aspect differs from the prior's is fitted inside that size on black, never stretched.

Labels: a follow-up the app made carries its SYNTHETIC band below the film (and says how many rows are film in a
PNG text chunk, export.IMAGE_ROWS_CHUNK); shown as is it would give itself away. So every image of a case is shown
with its own band cut off and the SAME study band added below it — "this image may be SYNTHETIC" — real and
synthetic alike: every picture on the page is labelled, and the label tells a reader nothing about the source.
"""
from __future__ import annotations

import hashlib
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..image_io import load_image

DISPLAY_LONG_SIDE = 768  # px: every image of a case is resampled to the prior's aspect at this long side
PNG_CHUNKS = (b"IHDR", b"IDAT", b"IEND")  # all a served image contains
STUDY_LABEL = ("READER STUDY: this image may be SYNTHETIC", "research use, not for diagnosis")


def read_gray(path: str | Path) -> np.ndarray:
    """(H, W) float32 in [0, 1], dense tissue bright; ImageInputError when the file is not a usable radiograph."""
    return np.asarray(load_image(str(path)).array, dtype=np.float32)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes (recorded at `study create`, checked before a case is shown)."""
    stat = Path(path).stat()
    return _sha256(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=512)
def _sha256(path: str, mtime_ns: int, size: int) -> str:  # keyed by mtime and size: a replaced file is re-read
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display_size(shape: tuple[int, int], long_side: int = DISPLAY_LONG_SIDE) -> tuple[int, int]:
    """(width, height) with the aspect of an (H, W) image and the given long side."""
    height, width = shape
    scale = long_side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def case_pngs(paths: Sequence[Path], long_side: int = DISPLAY_LONG_SIDE) -> list[bytes]:
    """PNG bytes of every image of one case (prior first), all at the prior's display size; ImageInputError
    or OSError when a file cannot be read."""
    prior = film_rows(paths[0])
    size = display_size(prior.shape, long_side)
    return [_display_png(str(p), _mtime(p), size) for p in paths]


def film_rows(path: str | Path) -> np.ndarray:
    """The image without the label band an export added below it (export.IMAGE_ROWS_CHUNK); other files whole."""
    from PIL import Image

    from ..export import IMAGE_ROWS_CHUNK

    image = read_gray(path)
    with Image.open(path) as handle:
        rows = getattr(handle, "text", {}).get(IMAGE_ROWS_CHUNK)
    if rows is not None and rows.isdigit() and 0 < int(rows) <= image.shape[0]:
        return image[: int(rows)]
    return image


def _mtime(path: Path) -> int:
    return Path(path).stat().st_mtime_ns


@lru_cache(maxsize=256)
def _display_png(path: str, mtime_ns: int, size: tuple[int, int]) -> bytes:
    """The image's film rows fitted to `size`, with the one study band below (the same on every image)."""
    from ..export import label_band

    band = np.round(label_band(size[0], STUDY_LABEL) * 255).astype(np.uint8)
    return png_bytes(np.concatenate([fit_into(film_rows(path), size), band]))


def fit_into(image01: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 image of exactly `size` = (width, height): resampled with its own aspect kept, centred on black when
    its aspect differs from the box (an image is never stretched, so anatomy is never distorted)."""
    height, width = image01.shape
    box_w, box_h = size
    scale = min(box_w / width, box_h / height)
    inner = (min(box_w, max(1, round(width * scale))), min(box_h, max(1, round(height * scale))))
    canvas = np.zeros((box_h, box_w), np.uint8)  # (H, W)
    top, left = (box_h - inner[1]) // 2, (box_w - inner[0]) // 2
    canvas[top:top + inner[1], left:left + inner[0]] = resample(image01, inner)
    return canvas


def resample(image01: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) [0, 1] → uint8 at `size` = (width, height): area averaging to shrink, bicubic to enlarge."""
    height, width = image01.shape
    shrink = size[0] * size[1] < width * height
    resized = cv2.resize(image01, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)  # (h, w)
    return np.round(np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(gray: np.ndarray) -> bytes:
    """8-bit grayscale PNG of an (H, W) uint8 array with only IHDR, IDAT and IEND chunks (no metadata at all)."""
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"need an (H, W) uint8 image, got {gray.dtype} {gray.shape}")
    ok, buffer = cv2.imencode(".png", gray)
    if not ok:
        raise ValueError(f"could not encode a {gray.shape} image as PNG")
    data = buffer.tobytes()
    extra = set(png_chunk_types(data)) - set(PNG_CHUNKS)
    if extra:
        raise ValueError(f"the PNG encoder added metadata chunks {sorted(extra)}")
    return data


def png_chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file in order (checks each chunk's CRC)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    types, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        crc = int.from_bytes(data[offset + 8 + length:offset + 12 + length], "big")
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"PNG chunk {kind!r} has a bad CRC")
        types.append(kind)
        offset += 12 + length
    return types
