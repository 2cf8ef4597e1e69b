"""Validate an uploaded radiograph (type, byte size, pixel count) before any model sees it, and delete the upload.

Privacy (issue 12 §10): Gradio stores an upload in its cache under the file's original name (which may carry
patient identifiers) and would serve it for up to an hour. `load_upload` reads the bytes once and deletes that
file (and its folder) straight away, whether it could be used or not; the image is decoded from memory, so no
message ever repeats the original file name. Only the decoded pixels and non-identifying technical facts stay,
in the session's memory (gr.State, at most an hour). Files outside Gradio's cache (a CLI path, an example
drawing) are never deleted.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ImageInputError
from ..image_io import LoadedImage, load_image
from .config import UPLOAD_SUFFIXES, AppConfig
from .result_store import gradio_cache


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
    if suffix and suffix not in UPLOAD_SUFFIXES:  # the suffix is part of the name: not repeated back
        kinds = ", ".join(s.lstrip(".").upper() for s in UPLOAD_SUFFIXES)
        raise ImageInputError(f"this file type is not supported; upload a chest radiograph as {kinds}")
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
    try:
        check_upload(path, config)
        data = path.read_bytes()
    finally:
        discard_upload(path)
    return load_image(data, max_pixels=config.max_pixels)


def is_gradio_upload(path: Path) -> bool:
    """True for a file Gradio stored for a request: <Gradio cache>/<64-hex folder>/<name>, not a symlink."""
    try:
        parent = path.parent.resolve()
        return (not path.is_symlink() and parent.parent == gradio_cache()
                and re.fullmatch(r"[0-9a-f]{64}", parent.name) is not None)
    except OSError:
        return False


def discard_upload(path: Path) -> bool:
    """Delete a Gradio-stored upload and its folder when empty; True when something was deleted."""
    if not is_gradio_upload(path):
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    try:
        path.parent.rmdir()
    except OSError:  # another file in that folder
        pass
    return True
