"""End to end through `python app.py --study DB` on a free loopback port: gradio_client (login → rate → resume;
bad login; finish; admin) and, when Debian chromium is present, a real browser (login form, one rating, reload)."""
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

import pytest
from PIL import Image

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
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
    sources = {r[0] for r in connect(db).execute("SELECT source FROM candidates")}
    pngs = served_pngs(first[IMAGES])
    assert len(pngs) == 2 and len({Image.open(io.BytesIO(p)).size for p in pngs}) == 1
    assert all(set(png_chunk_types(p)) <= {b"IHDR", b"IDAT", b"IEND"} for p in pngs)  # no metadata at all
    served = json.dumps(first[IMAGES])
    assert not any(s in served for s in sources) and ".png" not in served
    assert [f["title"] for f in first[IMAGES]["films"]] == ["Prior radiograph", "Follow-up"]  # roles only
    assert not any(f["synthetic"] or f["band"] for f in first[IMAGES]["films"])  # blinded: nothing says which

    incomplete = reader.predict(*RATING[:5], None, *NO_B, "", api_name="/study_submit")
    assert "Please answer lesion location" in incomplete[MESSAGE]
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0

    second = reader.predict(*RATING, *NO_B, "looks plausible", api_name="/study_submit")
    assert second[PROGRESS] == "**Case 2 of 8**" and second[MESSAGE] == "Saved."
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
    assert "No flagged cases" in admin.predict(api_name="/study_admin")[ADMIN_FLAGS]


def test_browser_login_and_one_rating_then_resume_after_reload(served_study, browser):
    db, url = served_study
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    assert page.url.endswith("/login")
    page.fill("#username", "alice")
    page.fill("#password", "wrong-password")
    page.click("#login-button")
    assert "wrong password" in page.inner_text("#login-message")
    page.fill("#username", "alice")
    page.fill("#password", "alice-password")
    page.click("#login-button")
    page.get_by_text("Case 1 of 8").wait_for(timeout=30_000)
    assert page.evaluate("() => JSON.stringify(localStorage)").find("alice-password") < 0
    assert page.get_by_text("Generate SYNTHETIC follow-up").count() == 0  # a study launch shows only the study
    groups = ["Realism", "Faithfulness", "Anatomical consistency", "Real or synthetic?", "Confidence", "Change shown"]
    answers = ["4", "3", "5 (excellent)", "Synthetic", "2", "Partly"]
    for group, answer in zip(groups, answers):
        fieldset = page.locator("fieldset", has_text=group).first
        fieldset.get_by_label(answer, exact=True).check()
    page.locator("#study-submit").click()
    page.get_by_text("Case 2 of 8").wait_for(timeout=20_000)
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1
    page.reload()  # the HttpOnly session cookie brings the reader back to the same place
    page.get_by_text("Case 2 of 8").wait_for(timeout=20_000)
    page.locator("#study-images canvas").first.wait_for(timeout=20_000)  # the case in the film viewer
    page.screenshot(path="/tmp/legend_study_reader.png", full_page=True)
    page.click("#study-logout")
    page.wait_for_url(re.compile(r".*/login\?bye=1$"), timeout=20_000)
    page.goto(url)
    assert page.url.endswith("/login")  # the old session is gone
