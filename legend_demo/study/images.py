"""Study images: reading (legend_demo.core.image_io.load_image), file fingerprints, and the blinded display copies.

Blinding (issue 12 §6): every image of a case is shown at ONE size and format — the prior's aspect ratio with
a long side of DISPLAY_LONG_SIDE pixels, 8-bit grayscale PNG with no text, time or colour chunks — so neither
the pixel size of an engine's output, its file format, its metadata nor its file name tells a reader the source.
An image whose aspect differs from the prior's is fitted inside that size on black, never stretched.

Blinding by payload size (issue 24 §2): a compressed PNG's length tells how smooth the image is (app-made
follow-ups are smoother than real films), so the PNGs are written UNCOMPRESSED (deflate "stored" blocks, filter
0): a served PNG's byte length is `png_length(width, height)`, a function of its pixel size alone, and every
image of a case has exactly the same length whatever it shows.

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

from ..core.image_io import load_image

DISPLAY_LONG_SIDE = 768  # px: every image of a case is resampled to the prior's aspect at this long side
PNG_CHUNKS = (b"IHDR", b"IDAT", b"IEND")  # all a served image contains
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STORED_BLOCK = 65535  # the largest deflate stored block
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

    from ..core.export import IMAGE_ROWS_CHUNK

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
    from ..core.export import label_band

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
    """8-bit grayscale PNG of an (H, W) uint8 array: only IHDR, IDAT and IEND chunks (no metadata at all), its
    pixels stored uncompressed, so its length is `png_length(W, H)` whatever the pixels are."""
    if gray.dtype != np.uint8 or gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"need a non-empty (H, W) uint8 image, got {gray.dtype} {gray.shape}")
    height, width = gray.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each scanline: filter type 0 (None), then its samples
    rows[:, 1:] = gray
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])  # 8-bit grey, no interlace
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stored_zlib(rows.tobytes()))
            + _chunk(b"IEND", b""))


def png_length(width: int, height: int) -> int:
    """Byte length of every `png_bytes` image of that pixel size: signature, IHDR (25), IDAT, IEND (12)."""
    raw = height * (width + 1)
    return len(PNG_SIGNATURE) + 25 + 12 + stored_zlib_length(raw) + 12


def stored_zlib(data: bytes) -> bytes:
    """A zlib stream holding `data` in deflate "stored" blocks (RFC 1950/1951, no compression): its length is
    `stored_zlib_length(len(data))`, whatever the bytes are."""
    blocks = [b"\x78\x01"]  # zlib header: deflate, 32 K window, no dictionary (0x7801 % 31 == 0)
    for start in range(0, max(len(data), 1), STORED_BLOCK):
        piece = data[start:start + STORED_BLOCK]
        final = start + STORED_BLOCK >= len(data)
        size = len(piece)
        blocks.append(bytes([1 if final else 0]) + size.to_bytes(2, "little") + (size ^ 0xFFFF).to_bytes(2, "little") + piece)
    blocks.append(zlib.adler32(data).to_bytes(4, "big"))
    return b"".join(blocks)


def stored_zlib_length(size: int) -> int:
    """2 header bytes + 5 bytes per stored block (at most STORED_BLOCK bytes each) + the data + 4 checksum bytes."""
    return 2 + 5 * max(1, -(-size // STORED_BLOCK)) + size + 4


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file in order (checks each chunk's CRC)."""
    if data[:8] != PNG_SIGNATURE:
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
