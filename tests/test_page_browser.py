"""Every click worth it, in a real browser (Debian chromium via playwright) at 1366×768 (issue 20): Generate without
Find finds and shows the points, warnings stay beside the points and in the status, the tabs are made when opened
and their captions are whole, refusals leave no error badge, a lateral is refused on arrival, a point placed by hand
takes its finding from the text, the description shows its limit, and a phone sees the film after an example.
Screenshots go to tests/artifacts/ (git-ignored)."""
from __future__ import annotations

import pytest

from app_harness import app_url, chromium_missing_reason, example_png  # noqa: F401 - fixtures
from test_app_browser import fresh, in_viewport, python_points, shot, wait_for_points  # noqa: F401 - fresh: a fixture

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or "")]

TWO = "new right lower lobe consolidation and a new left pleural effusion"
ERROR_BADGES = ("() => Array.from(document.querySelectorAll('[data-testid=status-tracker]'))"
                ".filter((e) => e.innerText.includes('Error')).length")


@pytest.fixture()
def page(fresh):  # noqa: F811 - a new laptop-sized page on the app (test_app_browser.fresh)
    return fresh


def load_drawing(page, text: str) -> None:
    page.locator("#upload input[type=file]").set_input_files(example_png())
    page.locator("#point-editor .lv-stage").wait_for(timeout=60_000)
    page.locator("#text textarea").fill(text)


def test_generate_without_find_shows_points_followup_status_and_warnings_on_one_screen(page):
    load_drawing(page, "interval increase of right lower lobe consolidation")
    assert python_points(page) == []
    page.locator("#generate").click()  # no Find first: the points are found, shown and used
    page.locator("#status").get_by_text("SYNTHETIC follow-up").wait_for(timeout=180_000)
    page.locator("#result-viewer .fv-b .lv-stage").wait_for(timeout=30_000)
    page.locator("#point-editor .pe-dot").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    status = page.locator("#status").inner_text()
    assert "1 point(s) found for “interval increase of right lower" in status
    assert "σ ratio 0.1" in status and "model" in status  # σ ratio and seconds stay in the status line
    assert "orientation" in status  # a PNG: the assumed orientation is said in the result's status ...
    assert "orientation" in page.locator("#point-editor .pe-notes").inner_text()  # ... and beside the points
    for selector in ("#status", "#result-viewer .fv-a .lv-stage", "#result-viewer .fv-b .lv-stage",
                     "#point-editor .lv-stage", "#generate"):
        assert in_viewport(page, selector), selector
    shot(page, "generate_without_find_1366x768")
    page.get_by_role("tab", name="Attention").click()  # made when opened, captions whole and below the map
    page.locator("#attention .caption-label").first.wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    page.locator("#attention").scroll_into_view_if_needed()
    captions = page.evaluate("""() => Array.from(document.querySelectorAll('#attention .thumbnail-item')).map((t) => {
        const c = t.querySelector('.caption-label'), i = t.querySelector('img');
        const cb = c.getBoundingClientRect(), ib = i.getBoundingClientRect();
        return {text: c.innerText, cut: c.scrollWidth > c.clientWidth + 1, below: cb.top >= ib.bottom - 1,
                inside: cb.bottom <= document.querySelector('#attention').getBoundingClientRect().bottom + 1}; })""")
    assert captions and all("IoU" in c["text"] and not c["cut"] and c["below"] and c["inside"] for c in captions)
    shot(page, "attention_captions")
    page.get_by_role("tab", name="Report").click()
    page.locator("#report").get_by_text("warnings").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Downloads").click()
    page.wait_for_function("() => document.querySelectorAll('#downloads a').length >= 4", timeout=60_000)


def test_refusals_are_status_lines_and_leave_no_error_badge(page):
    page.locator("#generate").click()
    page.locator("#status").get_by_text("Not generated").wait_for(timeout=30_000)
    page.locator("#find").click()
    page.locator("#image-summary").get_by_text("Find lesions:").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert page.evaluate(ERROR_BADGES) == 0
    load_drawing(page, "x" * 2100)  # over the limit: the counter says so before Find
    assert "2,100 / 2,000 characters" in page.locator("#text-count").inner_text()
    assert "too long" in page.locator("#text-count").inner_text()
    page.locator("#find").click()
    page.locator("#image-summary").get_by_text("the limit is 2000").wait_for(timeout=30_000)
    page.locator("#text textarea").fill("new right lower lobe consolidation")  # the cause fixed
    assert page.locator("#text-count").inner_text().startswith("34 / 2,000")
    page.locator("#find").click()
    wait_for_points(page, lambda pts: len(pts) == 1)
    assert page.evaluate(ERROR_BADGES) == 0  # nothing red stays behind


def test_a_lateral_dicom_is_refused_as_it_arrives(page, tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("RG1_UNCI.dcm"))
    ds.ViewPosition = "LL"
    path = tmp_path / "lateral.dcm"
    ds.save_as(path)
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.locator("#image-summary").get_by_text("lateral view").wait_for(timeout=60_000)
    page.wait_for_function("() => !document.querySelector('#upload').innerText.includes('lateral')", timeout=10_000)
    assert page.locator("#point-editor .pe-empty").is_visible()  # no film kept, nothing to Find on


def test_a_point_placed_by_hand_takes_its_finding_from_the_text(page):
    load_drawing(page, TWO)
    page.locator("#find").click()
    points = wait_for_points(page, lambda pts: len(pts) == 2)
    effusion = next(p for p in points if "effusion" in p["label"])
    page.locator("#point-editor .pe-del").nth(points.index(effusion)).click()  # the effusion is no longer shown
    wait_for_points(page, lambda pts: len(pts) == 1)
    from test_app_browser import film_spot

    spot = film_spot(page, 0.3, 0.6)  # near the consolidation, but it is placed already
    page.mouse.click(spot["x"], spot["y"])
    added = wait_for_points(page, lambda pts: len(pts) == 2 and pts[1]["label"])[1]
    assert added["label"] == effusion["label"] and added["confidence"] == effusion["confidence"]
    row = page.locator("#point-editor .pe-row").nth(1)
    assert row.locator("[data-field=finding]").input_value() != ""
    assert "changed by hand" in page.locator("#point-editor .pe-notes").inner_text()


def test_layout_details_upload_label_examples_and_a_cleared_result(page):
    label = page.locator("#upload label[data-testid=block-label]").bounding_box()
    icon = page.locator("#upload [data-testid=upload-icon]").bounding_box()
    assert icon["y"] >= label["y"] + label["height"] - 1  # the drop icon starts below the box's label
    captions = page.locator("#examples .caption-label").all_inner_texts()
    assert len(captions) == len(set(captions)) > 5
    load_drawing(page, "interval increase of right lower lobe consolidation")
    page.locator("#generate").click()
    page.locator("#status").get_by_text("SYNTHETIC follow-up").wait_for(timeout=180_000)
    assert page.locator("#result-viewer .lv-note").is_visible()
    page.locator("#upload button[aria-label*=lear]").first.click()
    page.locator("#point-editor .pe-empty").wait_for(state="visible", timeout=30_000)
    assert page.locator("#result-viewer .lv-note").is_hidden()  # no "Dashed: the edit region…" without a result
    assert page.locator("#result-viewer .fv-empty").is_visible()


def test_a_phone_sees_the_film_after_loading_an_example(browser, app_url):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(app_url, wait_until="domcontentloaded")
        page.locator("#examples .thumbnail-item").nth(1).click()
        page.locator("#point-editor .pe-dot").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1200)
        stage = page.locator("#point-editor .lv-stage").bounding_box()
        assert stage["y"] >= -1 and stage["y"] + stage["height"] <= 844 + 1  # the whole film on the first screen
        shot(page, "phone_390_example")
    finally:
        context.close()
