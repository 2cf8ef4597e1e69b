"""Issue 26 without a server (fast tier): identical uploads share one file in Gradio's cache, so the file is
deleted only when every upload of it has been read, and never while Gradio may be writing it again."""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from legend_demo.core.errors import ImageInputError
from legend_demo.ui.config import AppConfig
from legend_demo.ui.uploads import UploadCounter, UploadLedger, read_upload


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _store(cache: Path, name: str, data: bytes) -> Path:
    """What Gradio's /upload does with a file: <cache>/<hash of the bytes>/<name>, replacing an identical one."""
    folder = cache / hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder.parent / f"tmp{random.random()}"
    temp.write_bytes(data)
    temp.rename(folder / name)
    return folder / name


def _upload(ledger: UploadLedger, cache: Path, name: str, data: bytes) -> Path:
    ledger.storing()
    path = _store(cache, name, data)
    ledger.stored([str(path)])
    return path


def test_the_file_goes_when_the_last_of_its_uploads_is_read(cache, monkeypatch):
    ledger = UploadLedger()
    monkeypatch.setattr("legend_demo.ui.uploads.UPLOADS", ledger)
    data = _png_bytes()
    paths = {_upload(ledger, cache, "DOE^JOHN.png", data) for _ in range(8)}
    (path,) = paths  # eight uploads, one file
    assert ledger.waiting(path) == 8
    for i in range(8):
        assert read_upload(str(path), AppConfig()) == data
        assert path.exists() == (i < 7)
    assert not path.parent.exists() and ledger.waiting(path) == 0


def test_a_rejected_read_counts_as_read(cache, monkeypatch):
    ledger = UploadLedger()
    monkeypatch.setattr("legend_demo.ui.uploads.UPLOADS", ledger)
    path = [_upload(ledger, cache, "SMITH.notes", b"not an image") for _ in range(2)][0]
    for _ in range(2):
        with pytest.raises(ImageInputError, match="file type"):
            read_upload(str(path), AppConfig())
    assert not path.exists()


def test_no_deletion_while_an_upload_is_being_stored(cache):
    ledger = UploadLedger()
    data = _png_bytes()
    first = _upload(ledger, cache, "a.png", data)
    ledger.storing()  # a second client's identical upload has arrived; Gradio is about to write the same path
    assert ledger.release(first) is False and first.exists()  # the first request has read it: deletion waits
    _store(cache, "a.png", data)
    ledger.stored([str(first)])  # the second upload is counted: its file stays for its own request
    assert first.exists() and ledger.waiting(first) == 1
    assert ledger.release(first) is True and not first.exists()
    other = _upload(ledger, cache, "b.png", b"other bytes")
    ledger.storing()  # an unrelated upload in progress
    assert ledger.release(other) is False and other.exists()
    ledger.stored([])  # it failed or stored something else: the deferred deletion happens now
    assert not other.exists()


def test_counts_of_uploads_nobody_read_are_forgotten(cache):
    ledger = UploadLedger(ttl_s=0.05)
    stale = _upload(ledger, cache, "a.png", b"aaa")
    time.sleep(0.1)
    _upload(ledger, cache, "b.png", b"bbb")  # every upload sweeps stale counts
    assert ledger.waiting(stale) == 0


def test_identical_uploads_and_reads_racing_from_many_threads(cache, monkeypatch):
    """Sixteen clients upload one film and read it at random moments: every read gets it, nothing is left."""
    ledger = UploadLedger()
    monkeypatch.setattr("legend_demo.ui.uploads.UPLOADS", ledger)
    data = _png_bytes()

    def client(seed: int) -> bytes:
        rng = random.Random(seed)
        time.sleep(rng.random() * 0.05)
        path = _upload(ledger, cache, "film.png", data)
        time.sleep(rng.random() * 0.05)
        return read_upload(str(path), AppConfig())

    for round_ in range(5):
        with ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(client, range(round_ * 16, round_ * 16 + 16))) == [data] * 16
        assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_the_middleware_counts_what_gradios_upload_route_stored(cache):
    ledger = UploadLedger()
    stored = _store(cache, "x.png", b"xyz")

    def app_answering(status: int, body: bytes, fail: bool = False):
        async def app(scope, receive, send):
            while (await receive()).get("more_body"):
                pass
            if fail:
                raise RuntimeError("client went away")
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": body})
        return app

    def post(app, path="/gradio_api/upload"):
        chunks = [b"part1", b"part2"]

        async def receive():
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}

        async def send(message):
            pass

        asyncio.run(UploadCounter(app, ledger)({"type": "http", "method": "POST", "path": path, "headers": []},
                                               receive, send))

    post(app_answering(200, json.dumps([str(stored)]).encode()))
    post(app_answering(200, json.dumps([str(stored)]).encode()))
    assert ledger.waiting(stored) == 2
    post(app_answering(413, b"too large"))
    post(app_answering(200, json.dumps([str(stored)]).encode()), path="/gradio_api/queue/join")  # not an upload
    with pytest.raises(RuntimeError):
        post(app_answering(200, b"", fail=True))
    assert ledger.waiting(stored) == 2 and ledger._storing == 0  # nothing left "being stored"
    assert ledger.release(stored) is False and ledger.release(stored) is True


def test_threads_never_see_a_deleted_file_they_were_promised(cache):
    """A read racing an identical upload that is mid-store: the stored file survives for the new upload."""
    ledger = UploadLedger()
    data = b"same film"
    path = _upload(ledger, cache, "f.png", data)
    gate, done = threading.Event(), threading.Event()

    def second_upload() -> None:
        ledger.storing()
        gate.set()
        time.sleep(0.05)
        _store(cache, "f.png", data)  # Gradio writes the path again …
        ledger.stored([str(path)])  # … and only then counts it
        done.set()

    thread = threading.Thread(target=second_upload)
    thread.start()
    gate.wait()
    ledger.release(path)  # the first request reads while the second upload is being stored
    done.wait()
    thread.join()
    assert path.read_bytes() == data and ledger.release(path) is True


def test_a_request_refused_before_reading_releases_its_upload(cache, monkeypatch):
    import gradio as gr

    from legend_demo.grounding.limits import MAX_TEXT_CHARS
    from legend_demo.ui.api import make_api

    ledger = UploadLedger()
    monkeypatch.setattr("legend_demo.ui.uploads.UPLOADS", ledger)
    data = _png_bytes()
    path = [_upload(ledger, cache, "film.png", data) for _ in range(2)][0]
    api_ground, _ = make_api(AppConfig())
    with pytest.raises(gr.Error, match="limit"):
        api_ground(str(path), "x" * (MAX_TEXT_CHARS + 1))  # refused for its text: its upload is released unread
    assert ledger.waiting(path) == 1 and path.exists()
    assert read_upload(str(path), AppConfig()) == data and not path.exists()  # the other request's read: gone
