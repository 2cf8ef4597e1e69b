"""Validate an uploaded radiograph (type, byte size, pixel count) before any model sees it."""
from __future__ import annotations

from pathlib import Path

from ..errors import ImageInputError
from ..image_io import LoadedImage, load_image
from .config import UPLOAD_SUFFIXES, AppConfig


def file_path(upload) -> Path | None:
    """The server-side path of a gr.File / gr.Image value (str, dict with 'path', or object with .path)."""
    if upload is None or upload == "":
        return None
    if isinstance(upload, (list, tuple)):
        if len(upload) != 1:
            raise ImageInputError(f"upload exactly one image, not {len(upload)} files")
        upload = upload[0]
    if isinstance(upload, dict):
        upload = upload.get("path") or upload.get("name")
    path = getattr(upload, "path", None) or getattr(upload, "name", None) or upload
    return Path(str(path))


def check_upload(path: Path, config: AppConfig) -> None:
    """Raise ImageInputError if the file's type or byte size is not acceptable (pixels are checked on load)."""
    suffix = path.suffix.lower()
    if suffix and suffix not in UPLOAD_SUFFIXES:
        kinds = ", ".join(s.lstrip(".").upper() for s in UPLOAD_SUFFIXES)
        raise ImageInputError(f"'{suffix}' files are not supported; upload a chest radiograph as {kinds}")
    if not path.is_file():
        raise ImageInputError("the uploaded file could not be found on the server; please upload it again")
    size_mb = path.stat().st_size / 1e6
    if size_mb > config.max_upload_mb:
        raise ImageInputError(f"the file is {size_mb:.1f} MB; the limit is {config.max_upload_mb:.0f} MB")
    if size_mb == 0:
        raise ImageInputError("the uploaded file is empty")


def load_upload(upload, config: AppConfig) -> LoadedImage:
    """Checked load of one upload; ImageInputError says what is wrong in words a clinician can act on."""
    path = file_path(upload)
    if path is None:
        raise ImageInputError("no image: upload a chest radiograph or pick a synthetic example first")
    check_upload(path, config)
    return load_image(path, max_pixels=config.max_pixels)
