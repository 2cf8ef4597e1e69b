"""Issue 12 §10–11: uploads are deleted as soon as they are read (and only Gradio's copies), their names never
echoed; result files live in a per-session folder that is purged when the session ends or goes stale."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from legend_demo.core.errors import ImageInputError
from legend_demo.ui.config import AppConfig


@pytest.fixture()
def gradio_tmp(tmp_path, monkeypatch):
    cache = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    return cache


def _gradio_upload(cache: Path, name: str, data: bytes) -> Path:
    """A file stored the way Gradio's /upload stores one: <cache>/<sha256 of the bytes>/<original name>."""
    folder = cache / hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_upload_is_deleted_once_read_and_decoded_from_memory(gradio_tmp):
    from legend_demo.ui.uploads import load_upload

    data = Path(get_testdata_file("RG1_UNCI.dcm")).read_bytes()
    path = _gradio_upload(gradio_tmp, "DOE^JOHN MRN 1234567.dcm", data)
    image = load_upload({"path": str(path)}, AppConfig())
    assert image.original_size == (1841, 1955) and image.source_format == "dicom"
    assert not path.exists() and not path.parent.exists()  # file and its folder gone at once


def test_rejected_upload_is_deleted_too_and_its_name_not_repeated(gradio_tmp):
    from legend_demo.ui.uploads import load_upload

    notes = _gradio_upload(gradio_tmp, "SMITH^JANE.notes", b"not an image at all")
    with pytest.raises(ImageInputError) as caught:
        load_upload(str(notes), AppConfig())
    assert "SMITH" not in str(caught.value) and ".notes" not in str(caught.value) and not notes.exists()
    broken = _gradio_upload(gradio_tmp, "SMITH^JANE.png", b"\x89PNG broken")
    with pytest.raises(ImageInputError) as caught:
        load_upload(str(broken), AppConfig())
    assert "SMITH" not in str(caught.value) and not broken.exists()


def test_files_outside_gradios_cache_are_never_deleted(gradio_tmp, tmp_path):
    from legend_demo.ui.uploads import discard_upload, load_upload

    own = tmp_path / "examples" / ("a" * 64) / "example.dcm"  # hex-named folder, but not in Gradio's cache
    own.parent.mkdir(parents=True)
    own.write_bytes(Path(get_testdata_file("RG1_UNCI.dcm")).read_bytes())
    load_upload(str(own), AppConfig())
    assert own.exists()
    odd = gradio_tmp / "legend_demo_examples" / "drawing.png"  # in the cache, but not an upload folder
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"x")
    assert discard_upload(odd) is False and odd.exists()


def test_result_folders_are_per_session_random_and_purged(gradio_tmp):
    from legend_demo.ui import result_store

    a1, a2 = result_store.result_folder("session-a"), result_store.result_folder("session-a")
    b = result_store.result_folder("session-b")
    assert a1.parent == a2.parent != b.parent and a1 != a2
    assert a1.is_relative_to(gradio_tmp.resolve() / "legend_results") and "session" not in str(a1)
    assert oct(a1.stat().st_mode & 0o777) == "0o700"
    (a1 / "synthetic_followup.png").write_bytes(b"png")

    class Request:
        session_hash = "session-a"

    result_store.purge_session(Request())
    assert not a1.parent.exists() and b.exists()  # only that session's results go

    (b / "report.json").write_text("{}")
    old = time.time() - result_store.RESULT_TTL_S - 5
    fresh = result_store.result_folder("session-c")
    os.utime(b, (old, old))
    assert result_store.purge_stale() == 1 and not b.exists() and not b.parent.exists() and fresh.exists()
    os.utime(fresh, (old, old))
    result_store.result_folder("session-d")  # every new result sweeps stale ones first
    assert not fresh.exists()


def test_downloads_no_longer_go_to_tmp_legend_result(gradio_tmp):
    import inspect

    from legend_demo.ui import downloads

    assert "mkdtemp" not in inspect.getsource(downloads) and "result_folder" in inspect.getsource(downloads.write_downloads)
