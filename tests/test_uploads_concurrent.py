"""Issue 26 on a live `python app.py` (tiny test engine): several clients sending the SAME film at once each get
their own result — gradio_client on /generate and /ground, and two browser sessions on the page — and no upload
is left in Gradio's cache afterwards."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_harness import chromium_missing_reason, running_app

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.slow
TEXTS = (
    "new right lower lobe consolidation", "new left lower lobe consolidation", "new right upper lobe opacity",
    "new left upper lobe opacity", "new right pleural effusion", "new left pleural effusion",
    "new right middle lobe consolidation", "new lingular consolidation",
)
UPLOAD_NAME = "PATIENT^SHARED_prior.png"  # the name a user's export might carry: it must not outlive the requests


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gradio-cache")
    with running_app(env={"GRADIO_TEMP_DIR": str(cache)}, log_path=cache.parent / "app.log") as url:
        yield url, cache


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """A real film (pydicom-data's RG1_UNCI chest CR at a quarter of its size) as an 8-bit PNG export."""
    import cv2
    from pydicom.data import get_testdata_file

    from legend_demo.core.image_io import load_image

    array = load_image(get_testdata_file("RG1_UNCI.dcm")).array
    small = cv2.resize(array, (array.shape[1] // 4, array.shape[0] // 4), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("film") / UPLOAD_NAME
    Image.fromarray(np.round(small * 255).astype(np.uint8)).save(path)
    return path


def _uploads_left(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.name.endswith("_prior.png")]


def _film_pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def _generate(url: str, film: Path, text: str):
    api = gradio_client.Client(url, verbose=False)
    return api.predict(gradio_client.handle_file(str(film)), text, steps=2, api_name="/generate")


def test_eight_clients_sending_one_film_each_get_the_follow_up_of_their_own_text(app, film):
    url, cache = app
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda text: _generate(url, film, text), TEXTS))
    assert _uploads_left(cache) == []  # every copy read, then deleted
    for text, (followup, report, files) in zip(TEXTS, together):
        assert report["request"]["progression_text"] == text and report["request"]["lesion_points"]["found_for"] == text
        assert Path(followup).is_file() and len(files) >= 3
    alone = [_generate(url, film, text) for text in TEXTS[:3]]  # the same requests one at a time
    for (followup, report, _), (single, single_report, _) in zip(together, alone):
        assert report["request"] == single_report["request"]  # the same points, found for the same text
        np.testing.assert_allclose(_film_pixels(followup), _film_pixels(single), atol=1)
    points = {str(r["request"]["lesion_points"]) for _, r, _ in together}
    assert len(points) >= 4  # the texts name different places: the results are not one result copied
    assert _uploads_left(cache) == []


def test_eight_clients_ground_one_film_at_once(app, film):
    url, cache = app

    def ground(text: str) -> dict:
        api = gradio_client.Client(url, verbose=False)
        return api.predict(gradio_client.handle_file(str(film)), text, "rules", api_name="/ground")

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(ground, TEXTS))
    assert [f["points"] for f in found] == [ground(text)["points"] for text in TEXTS]
    assert _uploads_left(cache) == []


@pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or "")
def test_two_browser_sessions_uploading_one_film_at_the_same_moment(app, film, browser):
    url, cache = app
    contexts = [browser.new_context(viewport={"width": 1366, "height": 768}) for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        for page in pages:
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#generate").wait_for(timeout=60_000)
        inputs = [page.locator("#upload input[type=file]") for page in pages]
        for field in inputs:  # both uploads leave before either is read
            field.set_input_files(str(film))
        for page in pages:
            page.get_by_text("Loaded PNG").wait_for(timeout=60_000)
            assert "could not be found" not in page.locator("#image-summary").inner_text()
            page.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
    finally:
        for context in contexts:
            context.close()
    assert _uploads_left(cache) == []
