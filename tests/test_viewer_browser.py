"""The film viewer in a real browser (Debian chromium via playwright) at 1366×768: window/level changes the pixels
shown and nothing sent to Python, linked panes, flicker and GBCA on/off, examples with their points, a real DICOM's
side markers, the 390-px phone layout, clean error states. Screenshots go to tests/artifacts/ (git-ignored)."""
from __future__ import annotations

import pytest

from app_harness import app_url, chromium_missing_reason, example_png  # noqa: F401 - fixtures
from test_app_browser import ARTIFACTS, CANVAS_SUM, LAPTOP, TEXT, in_viewport, python_points, shot, wait_for_points

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or "")]


@pytest.fixture(scope="module")
def result_page(browser, app_url):  # noqa: F811
    """The drawing, its points found, GBCA on and off generated once for this module's tests."""
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#upload input[type=file]").set_input_files(example_png())
    page.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
    page.locator("#text textarea").fill(TEXT)
    page.locator("#find").click()
    wait_for_points(page, lambda pts: len(pts) == 1)
    page.locator("#compare input").check()
    page.locator("#generate").click()
    page.locator("#status").get_by_text("SYNTHETIC follow-up").wait_for(timeout=240_000)
    page.wait_for_function("() => document.querySelector('#result-viewer .fv-b canvas').width > 0", timeout=30_000)
    page.wait_for_timeout(1500)
    yield page
    context.close()


def posts_during(page, action) -> list[str]:
    """The POST requests (Gradio events carry data to Python) sent while `action` runs and for 1.5 s after."""
    sent: list[str] = []
    listener = lambda request: sent.append(request.url) if request.method == "POST" else None  # noqa: E731
    page.on("request", listener)
    try:
        action()
        page.wait_for_timeout(1500)
    finally:
        page.remove_listener("request", listener)
    return sent


def drag(page, selector: str, dx: float, dy: float) -> None:
    box = page.locator(selector).first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=6)
    page.mouse.up()


def test_window_level_drag_changes_the_pixels_shown_not_the_data_sent_to_python(result_page):
    page = result_page
    page.locator("#result-viewer [data-act=reset]").click()
    page.wait_for_timeout(300)
    points = python_points(page)
    before = [page.evaluate(CANVAS_SUM, f"#result-viewer .fv-{p} canvas") for p in "ab"]
    editor_before = page.evaluate(CANVAS_SUM, "#point-editor canvas")
    sent = posts_during(page, lambda: drag(page, "#result-viewer .fv-a .lv-stage", -120, 60))
    after = [page.evaluate(CANVAS_SUM, f"#result-viewer .fv-{p} canvas") for p in "ab"]
    assert after[0] != before[0] and after[1] != before[1]  # both linked panes redrawn with the new window
    assert page.evaluate(CANVAS_SUM, "#point-editor canvas") != editor_before  # every film of the page follows
    view = page.evaluate("() => window.LegendViewer.view")
    assert view["w"] < 1 and view["c"] > 0.5
    assert sent == []  # nothing went to Python
    assert python_points(page) == points
    editor_sent = posts_during(page, lambda: drag(page, "#point-editor .lv-stage", 80, -40))
    assert editor_sent == [] and python_points(page) == points  # a drag on the editor's film is W/L, not a point
    box = page.locator("#result-viewer .fv-b .lv-stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)  # zoom in on the follow-up: the prior beside it follows
    page.wait_for_function("() => window.LegendViewer.view.zoom > 1.5", timeout=5_000)
    inverted = page.evaluate(CANVAS_SUM, "#result-viewer .fv-a canvas")
    page.locator("#result-viewer [data-act=invert]").click()
    assert page.evaluate(CANVAS_SUM, "#result-viewer .fv-a canvas") != inverted
    page.locator("#result-viewer [data-preset=lung]").click()
    lung = page.evaluate("() => window.LegendViewer.view")
    assert lung["preset"] == "lung" and 0 < lung["w"] < 1
    shot(page, "window_level_lung_preset")
    page.locator("#result-viewer [data-act=reset]").click()
    view = page.evaluate("() => window.LegendViewer.view")
    assert (view["zoom"], view["c"], view["w"], view["inv"]) == (1, 0.5, 1, False)


def test_flicker_toggles_prior_and_followup_in_place_and_gbca_on_vs_off(result_page):
    page = result_page
    viewer = page.locator("#result-viewer .lv-host")
    page.locator("#result-viewer [data-layout=flicker]").click()
    assert viewer.get_attribute("data-layout") == "flicker"
    assert page.locator("#result-viewer .fv-b").is_hidden()
    assert viewer.get_attribute("data-showing") == "prior"
    assert page.locator("#result-viewer .fv-a .lv-title").inner_text().startswith("PRIOR")
    page.locator("#result-viewer .fv-flip").click()
    assert viewer.get_attribute("data-showing") == "on"
    assert page.locator("#result-viewer .fv-a .lv-title").inner_text().startswith("SYNTHETIC")
    shot(page, "flicker_followup")
    page.locator("#result-viewer .lv-host").press("f")  # the key flips back
    assert viewer.get_attribute("data-showing") == "prior"
    page.locator("#result-viewer .fv-pair").select_option(label="GBCA on ↔ GBCA off")
    page.locator("#result-viewer [data-layout=side]").click()
    titles = page.locator("#result-viewer .lv-title").all_inner_texts()
    assert "GBCA on" in titles[0] and "GBCA off" in titles[1]
    assert page.locator("#result-viewer .fv-b .lv-band").is_visible()  # the SYNTHETIC band below each film
    shot(page, "gbca_on_vs_off_side_by_side")
    page.get_by_role("tab", name="Metrics").click()  # made when opened
    page.locator("#metrics-table thead").get_by_text("(GBCA off)").first.wait_for(timeout=60_000)


def test_viewer_offers_no_unlabelled_download(result_page):
    prevented = result_page.evaluate("""() => { const stage = document.querySelector('#result-viewer .lv-stage');
        const ev = new MouseEvent('contextmenu', {bubbles: true, cancelable: true});
        return !stage.dispatchEvent(ev); }""")
    assert prevented  # no "Save image as" of the canvas: downloads are the labelled files


def test_an_example_loads_its_stored_points(browser, app_url):  # noqa: F811
    from legend_demo.ui.examples import example_files

    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    try:
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator("#examples .thumbnail-item").nth(1).click()
        expected = example_files()[1][1]
        points = wait_for_points(page, lambda pts: len(pts) == len(expected.lesion_points()))
        assert [(p["x"], p["y"]) for p in points] == [(p.x, p.y) for p in expected.lesion_points()]
        assert page.locator("#point-editor .pe-dot").count() == len(points)
        assert page.locator("#text textarea").input_value() == expected.text
        assert page.locator("#point-editor .lv-host").get_attribute("data-stale") == "false"
        assert in_viewport(page, "#point-editor .lv-stage") and in_viewport(page, "#generate")
        shot(page, "example_with_stored_points")
    finally:
        context.close()


def test_real_dicom_shows_patient_sides_and_a_rejected_upload_clears_the_box(browser, app_url, tmp_path):  # noqa: F811
    from pydicom.data import get_testdata_file

    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    try:
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator("#upload input[type=file]").set_input_files(get_testdata_file("RG1_UNCI.dcm"))
        page.locator("#point-editor .lv-mark-left").get_by_text("R").wait_for(timeout=60_000)
        assert page.locator("#point-editor .lv-mark-right").inner_text() == "L"
        assert "lv-assumed" not in (page.locator("#point-editor .lv-mark-left").get_attribute("class") or "")
        assert "1841 × 1955" in page.locator("#image-summary").inner_text()
        page.locator("#text textarea").fill("RLL consolidation, new small left pleural effusion")
        page.locator("#find").click()
        points = wait_for_points(page, lambda pts: len(pts) == 2)
        assert points[0]["x"] < 1841 / 2 < points[1]["x"]  # patient right on the image left (PatientOrientation L\F)
        page.wait_for_timeout(800)
        shot(page, "real_dicom_RG1_points")
        page.locator("#upload button[aria-label*=lear]").first.click()  # the upload box's clear button
        page.locator("#point-editor .pe-empty").wait_for(state="visible", timeout=30_000)
        assert python_points(page) == []  # the old film and its points are gone with it
        bad = tmp_path / "broken.png"
        bad.write_text("not an image")  # a PNG by its name only
        page.locator("#upload input[type=file]").set_input_files(str(bad))
        page.get_by_text("This is a text file, not an image").first.wait_for(timeout=30_000)
        page.wait_for_function("() => !document.querySelector('#upload').innerText.includes('broken')", timeout=10_000)
        assert page.locator("#upload input[type=file]").count() == 1  # the box is empty again, ready for a film
        assert page.locator("#point-editor .pe-empty").is_visible()
        shot(page, "rejected_upload")
    finally:
        context.close()


def test_phone_width_keeps_a_working_single_column(browser, app_url):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator("#upload input[type=file]").set_input_files(example_png())
        page.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
        page.wait_for_timeout(800)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        stage = page.locator("#point-editor .lv-stage").bounding_box()
        assert 200 <= stage["width"] <= 390 and stage["height"] >= 200
        page.locator("#point-editor .lv-stage").tap()
        wait_for_points(page, lambda pts: len(pts) == 1)  # a tap places a point
        shot(page, "phone_390")
        assert ARTIFACTS.is_dir()
    finally:
        context.close()


def test_a_successful_cancel_is_not_an_error(browser, app_url):  # noqa: F811
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    try:
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator("#upload input[type=file]").set_input_files(example_png())
        page.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
        page.locator("#text textarea").fill(TEXT)
        for box, value in (("#steps", "100"), ("#samples-k", "8")):  # long enough to be cancelled on the way
            field = page.locator(f"{box} input[type=number]")
            field.fill(value)
            field.press("Enter")
        page.locator("#generate").click()
        page.locator("#result-viewer").get_by_text("step").first.wait_for(timeout=60_000)  # progress is running
        page.locator("#cancel").click()
        page.locator("#status").get_by_text("Generation cancelled at your request").wait_for(timeout=30_000)
        page.wait_for_timeout(3000)  # the engine stops after its current step
        errors = page.get_by_text("Error", exact=True)
        said = [errors.nth(i).evaluate("e => (e.closest('.toast-wrap, .toast-body, [role=alert]') || e.parentElement)"
                                       ".innerText") for i in range(errors.count())]
        assert not said, said  # no red toast, no error badge
        assert page.locator("#result-viewer .fv-empty").is_visible()  # nothing new was shown
        shot(page, "cancelled")
    finally:
        context.close()


def test_the_browser_decodes_both_kinds_of_film_exactly(browser):
    """viewer.js on a blank page: a 12-bit payload (and one sent as a difference) and an 8-bit PNG film decode to the
    samples Python encoded."""
    import cv2
    import numpy as np

    from legend_demo.ui.viewer import decode_payload, film_payload, png_payload, quantize, static_text

    rng = np.random.default_rng(3)
    prior01 = rng.random((40, 30)).astype(np.float32)
    follow01 = prior01.copy()
    follow01[10:20, 5:15] = np.clip(follow01[10:20, 5:15] + 0.2, 0, 1)
    prior = film_payload(prior01)
    follow = film_payload(follow01, prior01, prior["key"])
    gray = (rng.random((25, 35)) * 255).astype(np.uint8)
    png = png_payload(cv2.imencode(".png", gray)[1].tobytes())
    page = browser.new_page()
    try:
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=static_text("viewer.js"))
        decoded = page.evaluate("""async (films) => { const out = [];
            for (const f of films) { const d = await window.LegendViewer.decode(f); out.push([d.w, d.h, d.max, Array.from(d.data)]); }
            return out; }""", [prior, follow, png])
    finally:
        page.close()
    for (w, h, top, data), expected in zip(decoded, [quantize(prior01), quantize(follow01), gray]):
        assert (h, w) == expected.shape and np.array_equal(np.array(data).reshape(h, w), expected)
    assert decoded[0][2] == 4095 and decoded[2][2] == 255
    assert np.array_equal(decode_payload(prior), quantize(prior01))
