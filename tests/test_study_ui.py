"""End to end through a locally served study app: gradio_client (login → rate → resume; bad login; finish;
admin) and, when Debian chromium is present, a real browser (login + one rating)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.readers import add_reader
from legend_demo.study.studies import create_study

gradio_client = pytest.importorskip("gradio_client")
ROOT = Path(__file__).resolve().parents[1]
MESSAGE, DONE, PROGRESS, PRIOR, CAND_A, CAND_B, TEXT, TOKEN = range(8)  # client-visible outputs, in order
RATING = ("4", "3", "5", "synthetic", "2", "partly")  # realism … lesion location, as the client sends them
NO_B = (None,) * 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_study_server(db: Path, port: int) -> subprocess.Popen:
    """The study app in its own process (as `app.py --study` would serve it); returns once it answers HTTP."""
    code = (f"from legend_demo.ui.study_app import build_study_app; "
            f"build_study_app({str(db)!r}).launch(server_name='127.0.0.1', server_port={port}, quiet=True)")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"study server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("study server did not start within 90 s")


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
    server.kill()
    server.wait()


def client(url: str):
    return gradio_client.Client(url, verbose=False)


def test_login_rate_resume_finish_and_admin(served_study):
    db, url = served_study
    bad = client(url).predict("alice", "wrong-password", api_name="/study_login")
    assert "wrong password" in bad[MESSAGE] and bad[PROGRESS] == ""

    reader = client(url)
    first = reader.predict("alice", "alice-password", api_name="/study_login")
    assert first[PROGRESS] == "**Case 1 of 8**" and first[TOKEN]
    assert "Progression text" in first[TEXT] and Path(first[CAND_A]).is_file()
    sources = {r[0] for r in connect(db).execute("SELECT source FROM candidates")}
    for image in (first[PRIOR], first[CAND_A]):  # blinded: neither file name nor PNG metadata name a source
        assert not any(s in Path(image).name for s in sources)
        assert not any(s in str(v) for s in sources for v in Image.open(image).info.values())

    incomplete = reader.predict(*RATING[:5], None, *NO_B, "", api_name="/study_submit")
    assert "Please answer lesion location" in incomplete[MESSAGE]
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0

    second = reader.predict(*RATING, *NO_B, "looks plausible", api_name="/study_submit")
    assert second[PROGRESS] == "**Case 2 of 8**" and second[MESSAGE] == "Saved."
    stored = connect(db).execute("SELECT realism, called_synthetic, lesion_location, comment, position FROM ratings").fetchall()
    assert [tuple(r) for r in stored] == [(4, 1, "partly", "looks plausible", 1)]

    # Browser closed: a new client resumes with the stored token, or by logging in again, at case 2.
    assert client(url).predict(first[TOKEN], api_name="/study_resume")[PROGRESS] == "**Case 2 of 8**"
    assert client(url).predict("alice", "alice-password", api_name="/study_login")[PROGRESS] == "**Case 2 of 8**"
    assert client(url).predict("not-a-token", api_name="/study_resume")[PROGRESS] == ""

    screen = second
    for _ in range(7):
        screen = reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
    assert "Study complete" in screen[DONE]["value"] and "8" in screen[DONE]["value"]
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 8

    admin = client(url)
    assert "Wrong admin password" in admin.predict("alice-password", api_name="/study_admin")[0]
    text, table = admin.predict("admin-password", api_name="/study_admin")
    assert "ratings:** 8" in text
    assert {row[0] for row in table["value"]["data"]} == sources


def test_browser_login_and_one_rating_then_resume_after_reload(served_study, browser):
    db, url = served_study
    page = browser.new_page()
    page.goto(url)
    page.locator("#study-name input, #study-name textarea").first.fill("alice")
    page.locator("#study-password input").first.fill("wrong-password")
    page.locator("#study-login").click()
    page.get_by_text("wrong password").wait_for(timeout=20_000)
    page.locator("#study-password input").first.fill("alice-password")
    page.locator("#study-login").click()
    page.get_by_text("Case 1 of 8").wait_for(timeout=20_000)
    groups = ["Realism", "Faithfulness", "Anatomical consistency", "Real or synthetic?", "Confidence", "Change shown"]
    answers = ["4", "3", "5 (excellent)", "Synthetic", "2", "Partly"]
    for group, answer in zip(groups, answers):
        fieldset = page.locator("fieldset", has_text=group).first
        fieldset.get_by_label(answer, exact=True).check()
    page.locator("#study-submit").click()
    page.get_by_text("Case 2 of 8").wait_for(timeout=20_000)
    assert connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1
    page.reload()  # the session token in localStorage brings the reader back to the same place
    page.get_by_text("Case 2 of 8").wait_for(timeout=20_000)
