"""Real browser (Debian chromium via playwright) at a laptop's 1366×768: the point editor (drag, add, delete,
undo, labels), points tied to their text, the one-screen layout and a labelled result.

Screenshots of the main states go to tests/artifacts/ (git-ignored) for a person to look at.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app_harness import app_url, chromium_missing_reason, example_png  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or "")]

WIDTH, HEIGHT = 448, 512  # the first synthetic drawing
LAPTOP = {"width": 1366, "height": 768}
TEXT = "interval increase of right lower lobe consolidation"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CANVAS_SUM = ("(sel) => { const c = document.querySelector(sel); const d = c.getContext('2d')"
              ".getImageData(0, 0, c.width, c.height).data; let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i];"
              " return s; }")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.fixture()
def fresh(browser, app_url):  # noqa: F811
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#generate").wait_for(timeout=60_000)
    yield page
    context.close()


@pytest.fixture()
def page(fresh):
    """The drawing loaded and its points found for TEXT."""
    fresh.locator("#upload input[type=file]").set_input_files(example_png())
    fresh.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
    fresh.locator("#text textarea").fill(TEXT)
    fresh.locator("#find").click()
    fresh.locator("#point-editor .pe-dot").first.wait_for(timeout=60_000)
    wait_for_points(fresh, lambda pts: len(pts) == 1)
    wait_still(fresh, "#point-editor .pe-dot")  # the warnings beside the points may still shift the film
    return fresh


def wait_still(page, selector: str, timeout_ms: int = 15_000) -> None:
    """Until `selector`'s box is the same on three reads 250 ms apart (a layout that settled); fails otherwise."""
    boxes, deadline = [], page.evaluate("Date.now()") + timeout_ms
    while page.evaluate("Date.now()") < deadline:
        boxes = (boxes + [page.locator(selector).first.bounding_box()])[-3:]
        if len(boxes) == 3 and boxes[0] == boxes[1] == boxes[2]:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} kept moving: {boxes}")


def python_points(page) -> list[dict]:
    """The points as Python echoed them back (the read-only JSON box)."""
    return json.loads(page.locator("#points-json textarea").input_value() or "[]")


def wait_for_points(page, predicate, timeout_ms: int = 30_000) -> list[dict]:
    deadline = page.evaluate("Date.now()") + timeout_ms
    while page.evaluate("Date.now()") < deadline:
        points = python_points(page)
        if predicate(points):
            return points
        page.wait_for_timeout(200)
    raise AssertionError(f"Python never saw the expected points; last: {python_points(page)}")


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"] + 1
            and box["y"] + box["height"] <= LAPTOP["height"] + 1)


def film_spot(page, fx: float, fy: float, host: str = "#point-editor") -> dict:
    """Where a fraction (fx, fy) of the film is on screen (the film is letterboxed, zoomed and panned in its stage)."""
    return page.evaluate("""([host, fx, fy, w, h]) => {
        const stage = document.querySelector(host + ' .lv-stage').getBoundingClientRect();
        const v = window.LegendViewer.view;
        const s = Math.min(stage.width / w, stage.height / h) * v.zoom;
        return {x: stage.left + stage.width / 2 + (fx - v.cx) * w * s, y: stage.top + stage.height / 2 + (fy - v.cy) * h * s};
    }""", [host, fx, fy, WIDTH, HEIGHT])


def test_dragging_a_point_sends_original_pixel_coordinates_to_python(page):
    before = python_points(page)[0]
    dot = page.locator("#point-editor .pe-dot").first.bounding_box()
    spot = film_spot(page, 0.6, 0.3)
    page.mouse.move(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
    page.mouse.down()
    page.mouse.move(spot["x"], spot["y"], steps=8)
    page.mouse.up()
    after = wait_for_points(page, lambda pts: len(pts) == 1 and pts[0]["x"] != before["x"])[0]
    assert after["x"] == pytest.approx(0.6 * WIDTH, abs=0.02 * WIDTH)
    assert after["y"] == pytest.approx(0.3 * HEIGHT, abs=0.02 * HEIGHT)
    assert after["confidence"] == before["confidence"] and after["label"] == before["label"]


def test_click_adds_numbered_points_double_click_deletes_and_undo_restores(page):
    spot = film_spot(page, 0.75, 0.5)
    page.mouse.click(spot["x"], spot["y"])
    added = wait_for_points(page, lambda pts: len(pts) == 2)[1]
    assert added["x"] == pytest.approx(0.75 * WIDTH, abs=0.02 * WIDTH)
    assert page.locator("#point-editor .pe-dot span").all_inner_texts() == ["1", "2"]  # numbered, not confidence
    page.locator("#point-editor .pe-dot").nth(1).dblclick()
    wait_for_points(page, lambda pts: len(pts) == 1)
    kept = python_points(page)
    page.locator("#point-editor .pe-del").first.click()
    wait_for_points(page, lambda pts: len(pts) == 0)
    text_before = page.locator("#text textarea").input_value()
    page.locator("#point-editor .lv-stage").hover()
    page.keyboard.press("Control+z")  # the editor has the focus since the click: the text box is never touched
    restored = wait_for_points(page, lambda pts: len(pts) == 1)
    assert restored == kept
    assert page.locator("#text textarea").input_value() == text_before
    page.keyboard.press("Control+y")
    wait_for_points(page, lambda pts: len(pts) == 0)
    page.locator("#point-editor [data-pe=reset]").click()  # back to what the grounder found
    assert wait_for_points(page, lambda pts: len(pts) == 1) == kept


def test_point_labels_are_clinical_and_editable(page):
    first = python_points(page)[0]
    assert first["label"] == "consolidation, increased (right lower lobe)"  # not "increase (RLL)"
    row = page.locator("#point-editor .pe-row").first
    assert row.locator("[data-field=finding]").input_value() == "consolidation"
    assert row.locator("[data-field=zone]").input_value() == "right lower lobe"
    row.locator("[data-field=change]").fill("new")
    row.locator("[data-field=change]").press("Enter")
    row.locator(".pe-conf").select_option("4")
    points = wait_for_points(page, lambda pts: pts and pts[0]["confidence"] == 4 and "new" in pts[0]["label"])
    assert points[0]["label"] == "consolidation, new (right lower lobe)"


def test_moving_the_sigma_slider_redraws_the_prior_overlay(page):
    page.wait_for_timeout(500)
    before = page.evaluate(CANVAS_SUM, "#point-editor canvas")
    slider = page.locator("#sigma input[type=range]")
    slider.evaluate("(el) => { el.value = '0.25'; el.dispatchEvent(new Event('input', {bubbles: true}));"
                    " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    page.wait_for_function(f"(old) => ({CANVAS_SUM})('#point-editor canvas') !== old", arg=before, timeout=30_000)
    with_overlay = page.evaluate(CANVAS_SUM, "#point-editor canvas")
    page.locator("#point-editor [data-pe=prior]").click()  # hide the prior overlay: the film shows plain
    assert page.locator("#point-editor [data-pe=prior]").get_attribute("aria-pressed") == "false"
    assert page.evaluate(CANVAS_SUM, "#point-editor canvas") != with_overlay
    page.keyboard.press("o")  # and back with its key (the editor has the focus)
    assert page.evaluate(CANVAS_SUM, "#point-editor canvas") == with_overlay


def test_text_edited_after_find_marks_points_stale_and_generate_is_refused(page):
    page.locator("#text textarea").fill("Left pleural effusion has increased")
    page.wait_for_function("() => document.querySelector('#point-editor .lv-host').dataset.stale === 'true'",
                           timeout=10_000)
    assert page.locator("#point-editor .pe-stale").is_visible()
    shot(page, "stale_points")
    page.locator("#generate").click()
    page.get_by_text("not for the description now in the box").first.wait_for(timeout=60_000)
    assert "SYNTHETIC follow-up" not in page.locator("#status").inner_text()
    page.locator("#point-editor [data-pe=keep]").click()  # the user says these points are for the new text
    page.wait_for_function("() => document.querySelector('#point-editor .lv-host').dataset.stale === 'false'",
                           timeout=10_000)


def test_one_screen_at_1366x768_after_find_and_after_generate(page):
    for selector in ("#point-editor .lv-stage", "#result-viewer", "#generate", "#find", "#text"):
        assert in_viewport(page, selector), selector
    shot(page, "after_find_1366x768")
    page.locator("#generate").click()
    page.locator("#status").get_by_text("SYNTHETIC follow-up").wait_for(timeout=180_000)
    page.locator("#result-viewer .fv-a .lv-stage").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert "tiny-random" in page.locator("#status").inner_text()
    for selector in ("#point-editor .lv-stage", "#result-viewer .fv-a .lv-stage", "#result-viewer .fv-b .lv-stage",
                     "#generate", "#status"):
        assert in_viewport(page, selector), selector
    status = page.locator("#status")  # the status line is whole: nothing of it below the fold or clipped
    assert status.evaluate("(el) => el.scrollHeight <= el.clientHeight + 1") or "⚠" in status.inner_text()
    titles = page.locator("#result-viewer .lv-title").all_inner_texts()
    assert titles[0].startswith("PRIOR") and titles[1].startswith("SYNTHETIC")  # the synthetic film says so
    assert page.locator("#research-notice").is_visible()
    shot(page, "after_generate_1366x768")
