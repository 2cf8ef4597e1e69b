"""End to end through `python app.py --study DB` on a free loopback port: gradio_client (login → rate → resume;
bad login; finish; admin; exports behind the admin session) and, when Debian chromium is present, a real browser at
1366×768 and 390×844 (one screen per case, missing answers marked in view, the next case brought into view, drafts
and time per case across a reload, the viewer reset per case, Back after logout, the admin page and its downloads).

Screenshots go to $LEGEND_STUDY_SHOTS (default: the test's tmp folder)."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from PIL import Image

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.export import check_imrmc
from legend_demo.study.images import png_chunk_types
from legend_demo.study.manifest import read_manifest
from legend_demo.study.readers import add_reader
from legend_demo.study.studies import create_study

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
# client-visible outputs of /study_screen, /study_submit and /study_admin, in order
MESSAGE, DONE, PROGRESS, IMAGES, TEXT = range(5)
COMMENT, ADMIN_TEXT, ADMIN_TABLE, ADMIN_FLAGS = 17, 18, 19, 20
HELPER, ADMIN_READERS, ADMIN_ANSWERS, ADMIN_EXPORTS = 21, 22, 23, 24
RATING = ("4", "3", "5", "synthetic", "2", "partly")  # realism … lesion location, as the client sends them
NO_B = (None,) * 6


def free_port() -> int:
    from app_harness import free_port as harness_free_port

    return harness_free_port()


def launch_study_server(db: Path, port: int, env: dict[str, str] | None = None,
                        log: Path | None = None) -> subprocess.Popen:
    """`python app.py --study DB` in its own process on 127.0.0.1; returns once its login page answers."""
    child_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT), **(env or {})}
    out = open(log, "w") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "app.py", "--study", str(db), "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            detail = log.read_text()[-2000:] if log else process.stderr.read().decode()[-2000:]
            raise RuntimeError(f"study server exited: {detail}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("study server did not start within 90 s")


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def make_study(tmp_path: Path, readers=("alice",), **options) -> Path:
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / "demo")), seed=5, admin_password="admin-password", **options)
    conn = connect(db)
    for name in readers:
        add_reader(conn, name, f"{name}-password")
    conn.close()
    return db


@pytest.fixture()
def served_study(tmp_path):
    db, port = make_study(tmp_path), free_port()
    server = launch_study_server(db, port)
    yield db, f"http://127.0.0.1:{port}/"
    stop(server)


def client(url: str, name: str | None = None, password: str | None = None, cookies: dict | None = None):
    """A gradio_client logged in through the study's /login form (or carrying a browser's cookies)."""
    auth = (name, password or f"{name}-password") if name else None
    kwargs = {"httpx_kwargs": {"cookies": dict(cookies)}} if cookies else {}
    return gradio_client.Client(url, auth=auth, verbose=False, **kwargs)


def served_pngs(viewer: dict | str) -> list[bytes]:
    """The PNG bytes of every image on a case screen (they arrive as data URLs in the film viewer's value)."""
    text = viewer if isinstance(viewer, str) else json.dumps(viewer)
    return [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]


def test_login_rate_resume_finish_and_admin(served_study):
    db, url = served_study
    with pytest.raises(gradio_client.exceptions.AuthenticationError):
        client(url, "alice", "wrong-password")

    reader = client(url, "alice")
    first = reader.predict(api_name="/study_screen")
    assert first[PROGRESS] == "**Case 1 of 8**" and "Progression text" in first[TEXT]
    assert first[HELPER]["position"] == 1 and first[HELPER]["event"] == "case"
    sources = {r[0] for r in connect(db).execute("SELECT source FROM candidates")}
    pngs = served_pngs(first[IMAGES])
    assert len(pngs) == 2 and len({Image.open(io.BytesIO(p)).size for p in pngs}) == 1
    assert all(set(png_chunk_types(p)) <= {b"IHDR", b"IDAT", b"IEND"} for p in pngs)  # no metadata at all
    served = json.dumps(first[IMAGES])
    assert not any(s in served for s in sources) and ".png" not in served
    assert [f["title"] for f in first[IMAGES]["films"]] == ["Prior radiograph", "Follow-up"]  # roles only
    assert not any(f["synthetic"] or f["band"] for f in first[IMAGES]["films"])  # blinded: nothing says which
    assert first[IMAGES]["fresh_view"] and all(f["film"]["fixed_rows"] > 0 for f in first[IMAGES]["films"])

    incomplete = reader.predict(*RATING[:5], None, *NO_B, "", api_name="/study_submit")
    assert "Please answer lesion location" in incomplete[MESSAGE] and incomplete[HELPER]["event"] == "missing"
    assert "study-missing" in incomplete[5 + 5]["elem_classes"] and "study-missing" not in incomplete[5]["elem_classes"]
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0

    second = reader.predict(*RATING, *NO_B, "looks plausible", api_name="/study_submit")
    assert second[PROGRESS] == "**Case 2 of 8**" and second[MESSAGE] == "Saved."
    assert second[HELPER]["event"] == "saved" and second[HELPER]["saved_number"] == 1 and second[HELPER]["number"] == 2
    stored = connect(db).execute("SELECT realism, called_synthetic, lesion_location, comment, position FROM ratings").fetchall()
    assert [tuple(r) for r in stored] == [(4, 1, "partly", "looks plausible", 1)]

    # Browser closed: its cookie resumes at case 2, and so does a fresh login.
    assert client(url, cookies=reader.cookies).predict(api_name="/study_screen")[PROGRESS] == "**Case 2 of 8**"
    assert client(url, "alice").predict(api_name="/study_screen")[PROGRESS] == "**Case 2 of 8**"

    screen = second
    for _ in range(7):
        screen = reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
    assert "Study complete" in screen[DONE]["value"] and "8" in screen[DONE]["value"]
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 8

    refused = reader.predict(api_name="/study_admin")
    assert "admin login" in refused[MESSAGE] and "ratings" not in str(refused[ADMIN_TEXT])
    with pytest.raises(gradio_client.exceptions.AuthenticationError):
        client(url, "admin", "alice-password")
    admin = client(url, "admin", "admin-password")
    opened = admin.predict(api_name="/study_screen")  # the admin's page opens on the summary
    assert "ratings:** 8" in opened[ADMIN_TEXT] and {row[0] for row in opened[ADMIN_TABLE]["value"]["data"]} == sources
    progress_rows = opened[ADMIN_READERS]["value"]
    assert progress_rows["headers"][:3] == ["reader", "done", "left"] and progress_rows["data"][0][:3] == ["alice", 8, 0]
    answers = opened[ADMIN_ANSWERS]["value"]
    assert "confidence" in answers["headers"] and "location partly" in answers["headers"]
    assert all(row[answers["headers"].index("location partly")].startswith("4 (100%)") for row in answers["data"])
    assert "admin/export/vtt.imrmc" in opened[ADMIN_EXPORTS] and "No flagged cases" in admin.predict(api_name="/study_admin")[ADMIN_FLAGS]
    for row in opened[ADMIN_TABLE]["value"]["data"]:  # n = 4 per source: a mean, no interval, and it says why
        assert "too few for an interval" in row[3] and "[" not in row[3]

    # The exports are downloads behind the admin session: nobody else gets them.
    for name in ("ratings.csv", "vtt.imrmc", "vtt.key.csv"):
        assert httpx.get(f"{url}admin/export/{name}", timeout=30).status_code == 401
        assert httpx.get(f"{url}admin/export/{name}", cookies=dict(reader.cookies), timeout=30).status_code == 403
    got = {name: httpx.get(f"{url}admin/export/{name}", cookies=dict(admin.cookies), timeout=30)
           for name in ("ratings.csv", "vtt.imrmc", "vtt.key.csv")}
    assert all(r.status_code == 200 and "attachment" in r.headers["content-disposition"] and
               r.headers["cache-control"] == "no-store" for r in got.values())
    assert len(got["ratings.csv"].text.strip().splitlines()) == 1 + 8
    assert check_imrmc(got["vtt.imrmc"].text) == [] and "reader,1,alice" in got["vtt.key.csv"].text
    assert httpx.get(f"{url}admin/export/study.db", cookies=dict(admin.cookies), timeout=30).status_code == 404


def test_the_page_reports_time_and_drafts_only_for_its_own_open_case(served_study):
    """The helper's server function (not a named event) acts for the cookie's reader and their open case only."""
    db, url = served_study
    reader = client(url, "alice")
    reader.predict(api_name="/study_screen")
    config = httpx.get(url + "config", cookies=dict(reader.cookies), timeout=30).json()
    helper = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "study-helper")
    assert {d.get("api_name") for d in config["dependencies"]} == {"study_screen", "study_submit", "study_admin"}

    def report(payload, cookies):
        body = {"data": payload, "component_id": helper, "fn_name": "study_report", "session_hash": "x"}
        return httpx.post(url + "gradio_api/component_server", json=body, cookies=cookies, timeout=30)

    assert report({"position": 1, "seconds": 3.0}, {}).status_code == 401  # no session, no call
    draft = {"a": ["4", None, None, "real", None, None], "b": [None] * 6, "comment": "hmm"}
    assert report({"position": 1, "seconds": 2.0, "id": "r1", "draft": draft}, dict(reader.cookies)).json() == \
        {"time": 2.0, "draft": True}
    assert report({"position": 1, "seconds": 2.0, "id": "r1"}, dict(reader.cookies)).json()["time"] == 0.0  # resent: once
    assert report({"position": 5, "seconds": 2.0, "draft": draft}, dict(reader.cookies)).json() == {"time": 0.0, "draft": False}
    assert report({"position": 1, "seconds": 1e9}, dict(reader.cookies)).json()["time"] == 0.0  # not a measurement
    assert report({"position": 1, "draft": {"a": ["9"] * 6}}, dict(reader.cookies)).json()["draft"] is False
    admin = client(url, "admin", "admin-password")
    assert report({"position": 1, "seconds": 2.0}, dict(admin.cookies)).json() == {"time": 0.0, "draft": False}
    conn = connect(db)
    assert conn.execute("SELECT active_s FROM case_time").fetchone()[0] == 2.0
    assert json.loads(conn.execute("SELECT answers FROM drafts").fetchone()[0])["comment"] == "hmm"
    again = client(url, "alice").predict(api_name="/study_screen")  # a new login brings the draft back
    assert [again[5 + q]["value"] for q in range(6)] == ["4", None, None, "real", None, None] and again[COMMENT] == "hmm"


def test_a_study_that_allows_changes_lets_a_reader_revise_the_previous_case(tmp_path):
    db = make_study(tmp_path, allow_changes=True)
    port = free_port()
    server = launch_study_server(db, port)
    try:
        reader = client(f"http://127.0.0.1:{port}/", "alice")
        reader.predict(api_name="/study_screen")
        reader.predict(*RATING, *NO_B, "first thoughts", api_name="/study_submit")
        revising = reader.predict(api_name="/study_revise")
        assert revising[PROGRESS] == "**Revising case 1**" and "Revising case 1" in revising[MESSAGE]
        assert [revising[5 + q]["value"] for q in range(6)] == list(RATING) and revising[COMMENT] == "first thoughts"
        changed = ("2", *RATING[1:])
        back = reader.predict(*changed, *NO_B, "second thoughts", api_name="/study_submit")
        assert back[MESSAGE] == "Change saved." and back[PROGRESS] == "**Case 2 of 8**"
        rows = connect(db).execute("SELECT position, realism, comment, updated_at FROM ratings").fetchall()
        assert [(r[0], r[1], r[2]) for r in rows] == [(1, 2, "second thoughts")] and rows[0][3] is not None
    finally:
        stop(server)


# -- browser ---------------------------------------------------------------------------------------------------
def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LEGEND_STUDY_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login-button")


def in_view(page, selector: str) -> bool:
    """The element's whole box lies inside the viewport (nothing scrolled out, nothing cut off)."""
    return page.evaluate("""(sel) => { const els = [...document.querySelectorAll(sel)].filter((e) => e.offsetParent);
        return els.length > 0 && els.every((e) => { const r = e.getBoundingClientRect();
          return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }); }""",
                         selector)


def answer(page, side: str, answers) -> None:
    for q, label in answers:
        page.locator(f"#study-q-{side}-{q}").get_by_label(label, exact=True).check()


def keep_active(page, seconds: float) -> None:
    """Be a reader looking at the films: the page counts time only with recent input."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x = (x + 37) % 300
        page.mouse.move(200 + x, 300)
        time.sleep(0.25)


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


FULL_ANSWERS = [(0, "4 good"), (1, "3 acceptable"), (2, "5 excellent"), (3, "Synthetic"), (4, "2 unsure"), (5, "Partly")]
ALL_QUESTIONS = ", ".join(f"#study-q-a-{q}" for q in range(6))


def test_browser_one_screen_rating_drafts_time_and_next_case_in_view(served_study, browser, tmp_path):
    db, url = served_study
    shots = shots_dir(tmp_path)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url)
    assert page.url.endswith("/login")
    log_in(page, url, "alice", "wrong-password")
    assert "wrong password" in page.inner_text("#login-message")
    log_in(page, url, "alice", "alice-password")
    page.locator("#study-progress").get_by_text("Case 1 of 8").wait_for(timeout=30_000)
    page.locator("#study-images canvas").first.wait_for(timeout=30_000)
    shown_at = time.perf_counter()
    assert page.evaluate("() => JSON.stringify(localStorage)").find("alice-password") < 0
    assert page.get_by_text("Generate SYNTHETIC follow-up").count() == 0  # a study launch shows only the study
    time.sleep(0.5)
    page.screenshot(path=str(shots / "study_reader_1366x768.png"))

    # (1) one screen: the films, the text, every question and Submit inside the first viewport, films of useful size
    for selector in ("#study-images .lv-stage", "#study-text", ALL_QUESTIONS, "#study-submit", "#study-progress",
                     "#study-images .lv-toolbar"):
        assert in_view(page, selector), selector
    stage = page.locator("#study-images .lv-stage").first.bounding_box()
    assert stage["width"] >= 380 and stage["height"] >= 380
    assert page.evaluate("() => document.scrollingElement.scrollHeight <= innerHeight + 40")  # nothing to scroll to

    # (2) a partial submit marks the missing questions where they are, in view
    answer(page, "a", [(0, "4 good"), (3, "Synthetic")])
    wait_for(lambda: connect(db).execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 1, what="the draft")
    page.locator("#study-submit").click()
    page.get_by_text("Please answer faithfulness, anatomy, confidence, lesion location").wait_for(timeout=20_000)
    marked = page.evaluate("() => [...document.querySelectorAll('#study-questions fieldset.study-missing')].map((f) => f.id)")
    assert marked == ["study-q-a-1", "study-q-a-2", "study-q-a-4", "study-q-a-5"]
    assert in_view(page, "#study-questions fieldset.study-missing") and in_view(page, "#study-message")
    assert page.evaluate("""() => getComputedStyle(document.querySelector('#study-q-a-1 > span[data-testid="block-info"]'),
                                                    '::before').content""").startswith('"⚠')
    page.screenshot(path=str(shots / "study_partial_1366x768.png"))
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0

    # (3) a reload keeps the draft (server side) and the time counted so far
    keep_active(page, 3.0)
    page.reload()
    page.locator("#study-images canvas").first.wait_for(timeout=30_000)
    reloaded_at = time.perf_counter()
    checked = lambda q: page.evaluate(f"() => document.querySelector('#study-q-a-{q} input:checked')?.value ?? null")  # noqa: E731
    wait_for(lambda: checked(0) == "4", what="the draft's answers after the reload")
    assert checked(3) == "synthetic" and checked(1) is None
    assert "draft" in page.inner_text("#study-helper").lower()
    keep_active(page, 3.0)
    answer(page, "a", FULL_ANSWERS)
    page.locator("#study-submit").click()

    # (4) after Submit the next case is on screen, in view, with a visible confirmation
    page.locator("#study-progress").get_by_text("Case 2 of 8").wait_for(timeout=20_000)
    submitted_at = time.perf_counter()
    assert "Case 1 saved" in page.inner_text("#study-toast") and page.locator("#study-toast").is_visible()
    for selector in ("#study-progress", "#study-images .lv-stage", ALL_QUESTIONS, "#study-submit"):
        assert in_view(page, selector), selector
    assert checked(0) is None  # nothing carried over to the next case
    page.screenshot(path=str(shots / "study_saved_1366x768.png"))
    conn = connect(db)
    (seconds,) = conn.execute("SELECT time_on_case_s FROM ratings WHERE position = 1").fetchone()
    # time per case = active time on both pages (before and after the reload), never more than the wall-clock time
    assert submitted_at - reloaded_at + 1.5 < seconds <= submitted_at - shown_at + 1.0
    assert seconds >= 5.0 and conn.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 0

    # (5) the viewer: invert on this case does not carry over; the readout stays legible above the film
    page.locator("#study-images [data-act=invert]").click()
    assert "inverted" in page.locator("#study-images .lv-readout").first.inner_text()
    page.screenshot(path=str(shots / "study_inverted_1366x768.png"))
    answer(page, "a", FULL_ANSWERS)
    page.locator("#study-submit").click()
    page.locator("#study-progress").get_by_text("Case 3 of 8").wait_for(timeout=20_000)
    wait_for(lambda: "inverted" not in page.locator("#study-images .lv-readout").first.inner_text(), what="a fresh view")
    assert page.locator("#study-images .fv-region").is_hidden()  # no dead "Edit region" button in a study

    page.click("#study-logout")
    page.wait_for_url(re.compile(r".*/login\?bye=1$"), timeout=20_000)
    page.go_back()  # Back after logging out: the login form, not an empty page with an error
    page.wait_for_url(re.compile(r".*/login$"), timeout=20_000)
    assert page.locator("#login-button").is_visible()
    page.goto(url)
    assert page.url.endswith("/login")  # the old session is gone


def test_browser_phone_layout_keeps_films_large_and_toolbars_short(served_study, browser, tmp_path):
    _, url = served_study
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(page, url, "alice", "alice-password")
    page.locator("#study-images canvas").first.wait_for(timeout=30_000)
    time.sleep(0.5)
    shots = shots_dir(tmp_path)
    page.screenshot(path=str(shots / "study_reader_390x844.png"))
    page.screenshot(path=str(shots / "study_reader_390x844_full.png"), full_page=True)
    stages = [page.locator("#study-images .lv-stage").nth(i).bounding_box() for i in range(2)]
    assert all(s["width"] >= 340 and s["height"] >= 300 for s in stages), stages  # films one above the other, full width
    for bar in ("#study-images .lv-toolbar", "#study-images .lv-controls"):
        assert page.locator(bar).bounding_box()["height"] <= 40, bar  # one row each (scrolls sideways)
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= innerWidth + 1")  # no sideways page scroll


def test_browser_admin_page_runs_the_study(served_study, browser, tmp_path):
    db, url = served_study
    reader = client(url, "alice")
    reader.predict(api_name="/study_screen")
    for _ in range(2):
        reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    log_in(page, url, "admin", "admin-password")
    page.locator("#export-csv").wait_for(timeout=30_000)
    time.sleep(0.5)
    page.screenshot(path=str(shots_dir(tmp_path) / "study_admin_1366x768.png"), full_page=True)
    assert page.locator("#study-title").is_hidden() and page.locator("#study-instructions").is_hidden()  # no reader banner
    readers = page.locator("#study-admin-readers").inner_text()
    assert "alice" in readers and "last activity" in readers
    for link, name in (("#export-csv", "ratings.csv"), ("#export-imrmc", "vtt.imrmc"), ("#export-imrmc-key", "vtt.key.csv")):
        with page.expect_download() as download:
            page.click(link)
        assert download.value.suggested_filename == name
        text = Path(download.value.path()).read_text()
        if name == "vtt.imrmc":
            assert check_imrmc(text) == [] and "NR: 1" in text
        elif name == "ratings.csv":
            assert len(text.strip().splitlines()) == 3


def test_browser_pair_mode_fits_one_screen(tmp_path, browser):
    db = make_study(tmp_path, pair_mode=True)
    port = free_port()
    server = launch_study_server(db, port)
    try:
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        log_in(page, f"http://127.0.0.1:{port}/", "alice", "alice-password")
        page.locator("#study-images canvas").first.wait_for(timeout=30_000)
        time.sleep(0.5)
        page.screenshot(path=str(shots_dir(tmp_path) / "study_pairs_1366x768.png"))
        questions = ", ".join(f"#study-q-{side}-{q}" for side in "ab" for q in range(6))
        for selector in ("#study-images .lv-stage", questions, "#study-submit", "#study-text"):
            assert in_view(page, selector), selector
    finally:
        stop(server)
