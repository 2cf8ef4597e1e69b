"""Validate an uploaded radiograph (type, byte size, pixel count) before any model sees it, and delete the upload.

Privacy (issue 12 §10): Gradio stores an upload in its cache under the file's original name (which may carry
patient identifiers) and would serve it for up to an hour. `read_upload` reads the bytes once and releases the
file, whether it could be used or not; the image is decoded from memory, so no message ever repeats the original
file name. Only the decoded pixels and non-identifying technical facts stay, in the session's memory (gr.State,
at most an hour). Files outside Gradio's cache (a CLI path, an example drawing) are never deleted.

Identical uploads share one file (issue 26): Gradio stores an upload at <cache>/<hash of its bytes>/<name>, so
eight clients sending the same film at once get one path, and deleting it at the first read lost the other
seven requests. So uploads are counted (`UPLOADS`, fed by the `UploadCounter` middleware on Gradio's /upload
route) and the file is deleted when every upload of it has been read. While an upload is being stored (its body
received, its answer not yet sent) deletions wait for it, because Gradio may be writing that very path. An
upload that no request ever reads goes with Gradio's cache cleaner (files older than 1 h, checked every 15 min),
and its count is forgotten after UPLOAD_TTL_S.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ImageInputError
from ..core.image_io import LoadedImage, load_image
from .config import UPLOAD_SUFFIXES, AppConfig
from .result_store import RESULT_TTL_S, gradio_cache

UPLOAD_TTL_S = RESULT_TTL_S  # Gradio's cache cleaner removes unread uploads after the same hour


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
    return decode_upload(read_upload(upload, config), config)


def read_upload(upload, config: AppConfig) -> bytes:
    """The upload's bytes, after the type and size checks; the file is released either way (`UPLOADS.release`)."""
    path = file_path(upload)
    if path is None:
        raise ImageInputError("no image: upload a chest radiograph or pick a synthetic example first")
    try:
        check_upload(path, config)
        return path.read_bytes()
    finally:
        UPLOADS.release(path)


@contextmanager
def released_if_refused(upload):
    """Around checks made before an upload is read: if they refuse the request, its upload is released unread
    (so a refused request does not keep an identical upload's file waiting for it)."""
    try:
        yield
    except BaseException:
        try:
            path = file_path(upload)
        except ImageInputError:  # several files: none of them was this request's one image
            path = None
        if path is not None:
            UPLOADS.release(path)
        raise


def decode_upload(data: bytes, config: AppConfig) -> LoadedImage:
    """The image in an upload's bytes (pixel count checked)."""
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


@dataclass
class _Waiting:
    reads: int  # uploads of this path not yet read
    last_upload: float


class UploadLedger:
    """Per stored path, how many uploads still wait to be read; a path is deleted once that reaches 0 and no upload
    is being stored (Gradio may be writing that path again). Thread-safe."""

    def __init__(self, ttl_s: float = UPLOAD_TTL_S):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._storing = 0  # uploads whose body has arrived and whose answer has not been sent
        self._deferred: set[Path] = set()

    def storing(self) -> None:
        """An upload's body has arrived: Gradio will now write its file."""
        with self._lock:
            self._storing += 1

    def stored(self, paths: list[str]) -> None:
        """That upload's answer (before it is sent): the paths it stored, each to be read once more."""
        now = time.time()
        with self._lock:
            self._storing = max(0, self._storing - 1)
            for path in paths:
                entry = self._waiting.setdefault(_key(path), _Waiting(0, now))
                entry.reads, entry.last_upload = entry.reads + 1, now
            self._forget_stale(now)
            if self._storing == 0:
                self._delete_deferred()

    def release(self, path: Path) -> bool:
        """One request has read `path`: delete it when no other upload of it waits; True when it was deleted."""
        with self._lock:
            entry = self._waiting.get(_key(path))
            if entry is not None and entry.reads > 1:
                entry.reads -= 1
                return False
            self._waiting.pop(_key(path), None)
            if self._storing:
                self._deferred.add(path)
                return False
            return discard_upload(path)

    def waiting(self, path: str | Path) -> int:
        with self._lock:
            entry = self._waiting.get(_key(path))
            return 0 if entry is None else entry.reads

    def _delete_deferred(self) -> None:
        for path in self._deferred:
            if _key(path) not in self._waiting:
                discard_upload(path)
        self._deferred.clear()

    def _forget_stale(self, now: float) -> None:
        """Counts of uploads nobody read within the TTL (Gradio's cleaner has deleted those files by then)."""
        for key in [k for k, e in self._waiting.items() if now - e.last_upload > self.ttl_s]:
            del self._waiting[key]


def _key(path: str | Path) -> str:
    return os.path.abspath(str(path))


UPLOADS = UploadLedger()


class UploadCounter:
    """ASGI middleware for the app: counts every file Gradio's /upload route stores into UPLOADS before the client
    learns its path (pass it to the app with `app_kwargs={"middleware": [Middleware(UploadCounter)]}`)."""

    def __init__(self, app, ledger: UploadLedger | None = None):
        self.app, self.ledger = app, ledger or UPLOADS

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith("/upload"):
            return await self.app(scope, receive, send)
        storing, status, body = False, 0, bytearray()

        async def received():
            nonlocal storing
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body") and not storing:
                self.ledger.storing()
                storing = True
            return message

        async def sending(message):
            nonlocal storing, status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body") and storing:
                    storing = False
                    self.ledger.stored(_stored_paths(status, bytes(body)))
            await send(message)

        try:
            await self.app(scope, received, sending)
        finally:
            if storing:  # the upload failed or the client went away before the answer
                self.ledger.stored([])


def _stored_paths(status: int, body: bytes) -> list[str]:
    if status != 200:
        return []
    try:
        paths = json.loads(body)
    except ValueError:
        return []
    return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []
