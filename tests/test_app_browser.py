"""Real browser (Debian chromium via playwright): the point editor's drag, add, delete and sigma overlay."""
from __future__ import annotations

import json

import pytest

from app_harness import app_url, chromium_missing_reason, example_png  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or "")

WIDTH, HEIGHT = 448, 512  # the first synthetic example


@pytest.fixture()
def page(browser, app_url):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#upload input[type=file]").set_input_files(example_png())
    page.locator("#point-editor .pe-stage").wait_for(timeout=60_000)
    page.locator("#text textarea").fill("interval increase of right lower lobe consolidation")
    page.locator("#find").click()
    page.locator("#point-editor .pe-pt").first.wait_for(timeout=60_000)
    yield page
    context.close()


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


def test_dragging_a_point_sends_original_pixel_coordinates_to_python(page):
    before = wait_for_points(page, lambda pts: len(pts) == 1)[0]
    stage = page.locator("#point-editor .pe-stage").bounding_box()
    dot = page.locator("#point-editor .pe-pt").first.bounding_box()
    target = (stage["x"] + 0.6 * stage["width"], stage["y"] + 0.3 * stage["height"])
    page.mouse.move(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
    page.mouse.down()
    page.mouse.move(*target, steps=8)
    page.mouse.up()
    after = wait_for_points(page, lambda pts: len(pts) == 1 and pts[0]["x"] != before["x"])[0]
    assert after["x"] == pytest.approx(0.6 * WIDTH, abs=0.02 * WIDTH)
    assert after["y"] == pytest.approx(0.3 * HEIGHT, abs=0.02 * HEIGHT)
    assert after["confidence"] == before["confidence"]


def test_click_adds_and_double_click_deletes_a_point(page):
    wait_for_points(page, lambda pts: len(pts) == 1)
    stage = page.locator("#point-editor .pe-stage")
    stage.click(position={"x": 0.75 * stage.bounding_box()["width"], "y": 0.5 * stage.bounding_box()["height"]})
    added = wait_for_points(page, lambda pts: len(pts) == 2)[1]
    assert added["x"] == pytest.approx(0.75 * WIDTH, abs=0.02 * WIDTH)
    page.locator("#point-editor .pe-pt").nth(1).dblclick()
    wait_for_points(page, lambda pts: len(pts) == 1)
    page.locator("#point-editor .pe-del").first.click()
    wait_for_points(page, lambda pts: len(pts) == 0)


def test_moving_the_sigma_slider_changes_the_prior_overlay(page):
    overlay = page.locator("#point-editor .pe-ov")
    overlay.wait_for(timeout=30_000)
    before = overlay.get_attribute("src")
    slider = page.locator("#sigma input[type=range]")
    slider.evaluate("(el) => { el.value = '0.25'; el.dispatchEvent(new Event('input', {bubbles: true}));"
                    " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    page.wait_for_function("(old) => { const o = document.querySelector('#point-editor .pe-ov');"
                           " return o && o.getAttribute('src') !== old; }", arg=before, timeout=30_000)
    assert overlay.get_attribute("src") != before


def test_generate_shows_a_labelled_synthetic_result(page):
    page.locator("#generate").click()
    status = page.locator("#status")
    status.get_by_text("SYNTHETIC follow-up").wait_for(timeout=180_000)
    assert "tiny-random" in status.inner_text()
    assert page.locator("#research-notice").is_visible()
