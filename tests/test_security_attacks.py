"""Attacks on the real servers (issue 12), each through raw HTTP and/or gradio_client, loopback only, bounded.

`python app.py --study DB` and `python app.py` run in subprocesses on free 127.0.0.1 ports. Different attacking
clients are told apart with X-Forwarded-For: the study server here runs as behind a reverse proxy on 127.0.0.1
(LEGEND_STUDY_TRUSTED_PROXIES=127.0.0.1), which is the only case in which it believes that header (issue 24 attacks
the default, which does not: tests/test_security_attacks_study.py). Every attack here failed before its fix.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.images import display_size, png_chunk_types, read_gray
from legend_demo.study.manifest import read_manifest
from legend_demo.study.readers import add_reader
from legend_demo.study.studies import create_study
from test_study_ui import (
    ADMIN_FLAGS, ADMIN_TEXT, IMAGES, MESSAGE, NO_B, PROGRESS, RATING, TEXT, client, free_port, launch_study_server,
    served_pngs, stop,
)

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
READERS = ("alice", "bob", "carol", "dave", "erin", "gina")
ADMIN_PASSWORD = "admin-password"
PNG_ONLY = {b"IHDR", b"IDAT", b"IEND"}


@dataclass
class Served:
    db: Path
    url: str
    log: Path
    root: Path


def _plant_metadata(path: Path, size: int, text: dict[str, str]) -> None:
    """Rewrite a study PNG at another pixel size with tell-tale text chunks (what an engine's file might carry)."""
    image = Image.open(path).convert("L").resize((size, size))
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    image.save(path, pnginfo=info)


def _study(tmp: Path, readers=READERS) -> tuple[Path, Path]:
    root = tmp / "demo"
    manifest = write_demo_study(root)
    _plant_metadata(root / "demo01" / "demo01-flu.png", 512, {"Source": "real follow-up", "Software": "PACS export"})
    _plant_metadata(root / "demo01" / "demo01-cand-baseline-blur.png", 128, {"Software": "LeGend engine baseline-blur"})
    db = tmp / "study.db"
    create_study(db, read_manifest(manifest), seed=3, admin_password=ADMIN_PASSWORD)
    conn = connect(db)
    for name in readers:
        add_reader(conn, name, f"{name}-password")
    conn.close()
    return db, root


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack")
    db, root = _study(tmp)
    port, log = free_port(), tmp / "server.log"
    server = launch_study_server(db, port, env={"LEGEND_STUDY_TRUSTED_PROXIES": "127.0.0.1"}, log=log)
    yield Served(db, f"http://127.0.0.1:{port}/", log, root)
    stop(server)


@pytest.fixture(scope="module")
def fragile(tmp_path_factory):
    """A study whose files are damaged after creation, served with 9-second idle sessions (short enough to test
    expiry, long enough that one uncompressed case screen on a busy machine does not end a reader's session)."""
    tmp = tmp_path_factory.mktemp("fragile")
    db, root = _study(tmp, readers=("frank", "hana"))
    (root / "demo02" / "demo02-cand-baseline-blur.png").unlink()  # missing
    shutil.copy(root / "demo01" / "demo01-ref.png", root / "demo03" / "demo03-ref.png")  # replaced
    port, log = free_port(), tmp / "server.log"
    server = launch_study_server(db, port, env={"LEGEND_STUDY_IDLE_MINUTES": "0.15"}, log=log)
    yield Served(db, f"http://127.0.0.1:{port}/", log, root)
    stop(server)


def post_login(url: str, name: str, password: str, client_ip: str | None = None,
               http: httpx.Client | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    data = {"username": name, "password": password}
    if http is not None:
        return http.post(url + "login", data=data, headers=headers)
    return httpx.post(url + "login", data=data, headers=headers, timeout=30)


def session_http(url: str, name: str) -> httpx.Client:
    http = httpx.Client(timeout=30)
    assert post_login(url, name, f"{name}-password", http=http).status_code == 200
    return http


def fn_index(config: dict, api_name: str) -> int:
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def raw_event(http: httpx.Client, url: str, fn: int, data: list, session_hash: str) -> dict:
    """Join Gradio's queue directly (what a hand-made client can do) and read the result message."""
    joined = http.post(url + "gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session_hash,
                                                            "event_data": None, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session_hash}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the queue never completed the event")


def ratings(db: Path, reader: str | None = None) -> list[tuple]:
    conn = connect(db)
    try:
        sql = "SELECT p.name, r.position, r.candidate_id FROM ratings r JOIN readers p ON p.id = r.reader_id"
        rows = conn.execute(sql + (" WHERE p.name = ?" if reader else "") + " ORDER BY r.id", (reader,) if reader else ())
        return [tuple(r) for r in rows]
    finally:
        conn.close()


# -- §1, §4, §5: credentials and secrets never pass through Gradio; every route needs a session -------------
def test_login_is_no_gradio_event_and_no_secret_reaches_config_or_api(study):
    http = session_http(study.url, "alice")
    config_text = http.get(study.url + "config").text
    config = json.loads(config_text)
    for secret in ("alice-password", ADMIN_PASSWORD, "scrypt$", "ui_secret", "secret"):
        assert secret not in config_text
    assert config["run_history"] is False and "runs" not in config["footer_links"]
    named = {d.get("api_name") for d in config["dependencies"]}
    assert named == {"study_screen", "study_submit", "study_admin"}  # no login, no private events to call
    info = http.get(study.url + "gradio_api/info").text
    assert "password" not in info.lower() and "study_login" not in info
    page = http.get(study.url).text
    assert "alice-password" not in page and "admin-password" not in page


@pytest.mark.parametrize("method, path", [
    ("GET", "config"), ("GET", "gradio_api/info"), ("GET", "gradio_api/openapi.json"),
    ("POST", "gradio_api/queue/join"), ("GET", "gradio_api/queue/data?session_hash=x"),
    ("POST", "gradio_api/upload"), ("POST", "gradio_api/call/study_submit"), ("POST", "gradio_api/call/study_admin"),
    ("GET", "gradio_api/file=/etc/passwd"), ("GET", "gradio_api/heartbeat/x"),
])
def test_every_gradio_route_needs_a_live_session(study, method, path):
    bounded = httpx.Timeout(30.0, read=10.0)  # an open stream (the heartbeat) fails the test instead of hanging it
    anonymous = httpx.request(method, study.url + path, json={}, timeout=bounded)
    assert anonymous.status_code == 401
    forged = httpx.request(method, study.url + path, json={}, timeout=bounded,
                           cookies={name: "forged-token" for name in _cookie_names(study)})
    assert forged.status_code == 401


def test_the_page_sends_visitors_without_a_session_to_the_login_form(study):
    answer = httpx.get(study.url, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "login"
    form = httpx.get(study.url + "login", timeout=30)
    assert form.status_code == 200 and form.headers["x-frame-options"] == "DENY" and "type=\"password\"" in form.text
    with pytest.raises(Exception):
        gradio_client.Client(study.url, verbose=False)  # no session: not even the API description


def _cookie_names(study: Served) -> list[str]:
    http = session_http(study.url, "gina")
    return list(http.cookies.keys())


# -- §2: throttled logins ----------------------------------------------------------------------------------
def test_reader_brute_force_is_locked_out_while_the_reader_still_gets_in(study):
    statuses = [post_login(study.url, "alice", f"guess-{i}", "203.0.113.10").status_code for i in range(40)]
    assert statuses.count(401) == 5 and statuses.count(429) == 35  # locked after 5 failures, not 40 tries
    assert post_login(study.url, "alice", "alice-password", "203.0.113.10").status_code == 429  # right one refused too
    stop_attack, attacked = threading.Event(), []

    def attack() -> None:
        while not stop_attack.is_set() and len(attacked) < 500:
            attacked.append(post_login(study.url, "alice", "guess", "203.0.113.11").status_code)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        time.sleep(0.5)
        start = time.perf_counter()
        legit = post_login(study.url, "alice", "alice-password")  # the reader, from their own client
        seconds = time.perf_counter() - start
    finally:
        stop_attack.set()
        attacker.join(timeout=30)
    assert legit.status_code == 200 and seconds < 2.0 and attacked.count(401) <= 5
    print(f"\nlegitimate reader login during an attack: {seconds:.2f} s ({len(attacked)} attack requests meanwhile)")


def test_admin_brute_force_is_locked_out_while_the_admin_still_gets_in(study):
    statuses = [post_login(study.url, "admin", f"guess-{i}", "203.0.113.20").status_code for i in range(40)]
    assert statuses.count(401) == 5 and statuses.count(429) == 35
    assert post_login(study.url, "Admin", ADMIN_PASSWORD, "203.0.113.20").status_code == 429
    start = time.perf_counter()
    assert post_login(study.url, "admin", ADMIN_PASSWORD).status_code == 200 and time.perf_counter() - start < 2.0


def test_a_parallel_burst_is_counted_exactly(study):
    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda i: post_login(study.url, "bob", f"burst-{i}", "203.0.113.30").status_code, range(30)))
    assert statuses.count(401) == 5 and statuses.count(429) == 25  # no race lets extra guesses through


def test_password_spraying_from_one_client_is_locked(study):
    statuses = [post_login(study.url, f"user{i}", "Winter2026!", "203.0.113.40").status_code for i in range(25)]
    assert statuses.count(401) == 20 and statuses.count(429) == 5
    assert post_login(study.url, "carol", "carol-password", "203.0.113.40").status_code == 429


def test_distributed_guessing_locks_the_name_except_for_its_known_device(study):
    erins_browser = httpx.Client(timeout=30)
    assert post_login(study.url, "erin", "erin-password", "198.51.100.7", http=erins_browser).status_code == 200
    for attacker in range(12):  # 12 clients × 5 failures = 60 ≥ the per-name limit of 50
        for i in range(5):
            post_login(study.url, "erin", f"guess-{i}", f"203.0.113.{100 + attacker}")
    assert post_login(study.url, "erin", "erin-password", "192.0.2.55").status_code == 429  # a new client waits
    assert post_login(study.url, "erin", "erin-password", "198.51.100.7").status_code == 429  # her address: no pass
    assert post_login(study.url, "erin", "erin-password", "192.0.2.56", http=erins_browser).status_code == 200


def test_attempts_are_logged_without_any_password(study):
    log = study.log.read_text()
    assert "study login failed" in log and "study login refused" in log and "study login ok" in log
    for secret in ("guess-", "burst-", "Winter2026!", "-password"):
        assert secret not in log
    conn = connect(study.db)
    counts = dict(conn.execute("SELECT outcome, COUNT(*) FROM login_attempts GROUP BY outcome").fetchall())
    assert counts["failed"] >= 20 and counts["refused"] >= 60 and counts["ok"] >= 3
    names = {r[0] for r in conn.execute("SELECT account_key FROM login_attempts")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", n) for n in names)  # typed names are kept only as hashes


# -- §3: sessions rotate and expire ------------------------------------------------------------------------
def test_a_login_rotates_the_token_and_logout_ends_it(study):
    http = session_http(study.url, "gina")
    first = dict(http.cookies)
    assert post_login(study.url, "gina", "gina-password", http=http).status_code == 200
    second = dict(http.cookies)
    assert first != second
    assert httpx.get(study.url + "config", cookies=first, timeout=30).status_code == 401  # the old token is dead
    assert httpx.get(study.url + "config", cookies=second, timeout=30).status_code == 200
    assert http.post(study.url + "logout").status_code == 303
    assert httpx.get(study.url + "config", cookies=second, timeout=30).status_code == 401


def test_idle_sessions_expire(fragile):
    http = session_http(fragile.url, "hana")
    assert http.get(fragile.url + "config").status_code == 200
    time.sleep(10.0)  # the server runs with LEGEND_STUDY_IDLE_MINUTES=0.15 (9 s)
    assert http.get(fragile.url + "config").status_code == 401
    assert http.get(fragile.url).status_code == 303
    assert session_http(fragile.url, "hana").get(fragile.url + "config").status_code == 200  # log in again: fine


# -- §5: server-side authorisation of every handler --------------------------------------------------------
def test_a_reader_session_can_rate_only_its_own_open_case(study):
    dave = session_http(study.url, "dave")
    config = dave.get(study.url + "config").json()
    submit, admin = fn_index(config, "study_submit"), fn_index(config, "study_admin")
    before = ratings(study.db)
    forged = raw_event(dave, study.url, submit, [7, *RATING, *NO_B, "forged position"], "attacker-session")
    assert forged["success"] and ratings(study.db) == before  # the position comes from the server, not the payload
    stolen = raw_event(dave, study.url, admin, [], "attacker-session-2")
    assert "admin login" in str(stolen["output"]["data"][MESSAGE]) and "ratings:**" not in json.dumps(stolen["output"])

    reader = client(study.url, cookies=dict(dave.cookies))
    assert reader.predict(api_name="/study_screen")[PROGRESS] == "**Case 1 of 8**"
    assert reader.predict(*RATING, *NO_B, "mine", api_name="/study_submit")[MESSAGE] == "Saved."
    assert [p for _, p, _ in ratings(study.db, "dave")] == [1]
    assert ratings(study.db)[: len(before)] == before  # nobody else's ratings changed

    admin_client = client(study.url, "admin", ADMIN_PASSWORD)
    refused = admin_client.predict(*RATING, *NO_B, "admin rating", api_name="/study_submit")
    assert refused[MESSAGE] == "Only readers rate cases." and len(ratings(study.db)) == len(before) + 1


# -- §6: blinding by size, format, metadata and names -----------------------------------------------------
def test_every_image_of_a_case_is_served_at_one_size_without_metadata_or_names(study):
    conn = connect(study.db)
    sources = {r[0] for r in conn.execute("SELECT source FROM candidates")}
    files = [r[0] for r in conn.execute("SELECT prior_path FROM cases")] + [r[0] for r in conn.execute("SELECT path FROM candidates")]
    native = {Image.open(study.root / "demo01" / f"demo01-{kind}.png").size for kind in ("ref", "flu", "cand-baseline-blur")}
    assert len(native) == 3  # 256², 512², 128² on disk
    demo01_size = display_size(read_gray(study.root / "demo01" / "demo01-ref.png").shape)
    reader = client(study.url, "carol")
    screen, demo01_screens = reader.predict(api_name="/study_screen"), 0
    for _ in range(8):
        pngs = served_pngs(screen[IMAGES])
        sizes = {Image.open(io.BytesIO(p)).size for p in pngs}
        assert len(pngs) == 2 and len(sizes) == 1 and all(set(png_chunk_types(p)) <= PNG_ONLY for p in pngs)
        if "right lower zone airspace opacity" in screen[TEXT]:  # demo01: its 512² real and 128² candidate
            (width, height), = sizes
            assert width == demo01_size[0] and height > demo01_size[1]  # the prior's size, then the study band
            demo01_screens += 1
        shown = json.dumps(screen)
        assert not any(s in shown for s in sources) and not any(Path(f).name in shown for f in files)
        without_pixels = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", shown)  # base64 may spell anything
        assert not re.search(r"demo0\d|\.png|/tmp|cand-|-flu|-ref", without_pixels)
        screen = reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
    assert "Study complete" in screen[1]["value"] and demo01_screens == 2


# -- §7: missing or replaced files: neutral message, case skipped and flagged --------------------------------
def test_missing_or_replaced_files_are_skipped_neutrally_and_flagged_for_the_admin(fragile):
    reader = client(fragile.url, "frank")
    seen, screen = [], reader.predict(api_name="/study_screen")
    for _ in range(10):
        seen.append(json.dumps([screen[MESSAGE], screen[PROGRESS], screen[TEXT], screen[1]]))
        if "Study complete" in str(screen[1]):
            break
        screen = reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
    text = " ".join(seen)
    assert "could not be shown and was skipped" in text and "Study complete" in text
    assert "of 4**" in text  # 8 screens minus the 4 showing the two broken cases
    assert not re.search(r"demo0\d|\.png|/|cand|flu|ref\b|missing|changed|sha", text.replace("\\/", ""))
    again = client(fragile.url, "frank").predict(api_name="/study_screen")  # later logins keep working
    assert "Study complete" in str(again[1])
    admin = client(fragile.url, "admin", ADMIN_PASSWORD).predict(api_name="/study_admin")
    assert "demo02" in admin[ADMIN_FLAGS] and "missing" in admin[ADMIN_FLAGS]
    assert "demo03" in admin[ADMIN_FLAGS] and "changed" in admin[ADMIN_FLAGS]
    listed = subprocess.run([sys.executable, "-m", "legend_demo", "study", "flags", "--db", str(fragile.db)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "demo02" in listed.stdout and "demo03" in listed.stdout


# -- §8–9: a study launch shows only the study, and resumes after a reload -----------------------------------
def test_the_study_launch_serves_only_the_study(study):
    http = session_http(study.url, "gina")
    config = http.get(study.url + "config").json()
    labels = json.dumps([c.get("props", {}).get("label") for c in config["components"]])
    assert "Generate" not in labels and "Progression description" not in labels and "Engine" not in labels
    admin_box = [c for c in config["components"] if c.get("type") == "column" and not c["props"].get("visible", True)]
    assert admin_box  # the admin panel starts hidden and is only filled for an admin session
    screen = client(study.url, cookies=dict(http.cookies)).predict(api_name="/study_screen")
    assert "ratings" not in str(screen[ADMIN_TEXT]) and screen[PROGRESS].startswith("**Case 1 of")


def test_a_reload_resumes_where_the_reader_left_off(study):
    http = session_http(study.url, "gina")
    reader = client(study.url, cookies=dict(http.cookies))
    reader.predict(api_name="/study_screen")
    assert reader.predict(*RATING, *NO_B, "", api_name="/study_submit")[PROGRESS] == "**Case 2 of 8**"
    assert http.get(study.url).status_code == 200  # the page itself, with the cookie, is not redirected
    reloaded = client(study.url, cookies=dict(http.cookies)).predict(api_name="/study_screen")
    assert reloaded[PROGRESS] == "**Case 2 of 8**"


# -- §10–11: the main app deletes uploads once read and ties results to the session -------------------------
@pytest.fixture(scope="module")
def main_app(tmp_path_factory):
    from app_harness import running_app

    cache = tmp_path_factory.mktemp("gradio-cache")
    with running_app(env={"GRADIO_TEMP_DIR": str(cache)}, log_path=cache.parent / "app.log") as url:
        yield url, cache


def _dicom_bytes() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("RG1_UNCI.dcm")).read_bytes()


def test_an_uploaded_dicom_is_gone_once_read_and_its_name_is_never_echoed(main_app):
    url, cache = main_app
    name = "DOE^JOHN_MRN1234567.dcm"
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": (name, _dicom_bytes())}, timeout=60).json()[0]
    assert Path(uploaded).exists() and httpx.get(url + f"gradio_api/file={uploaded}", timeout=30).status_code == 200
    file_data = {"path": uploaded, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    call = httpx.post(url + "gradio_api/call/ground", json={"data": [file_data, "new right lower lobe consolidation", "rules"]},
                      timeout=60).json()
    result = httpx.get(url + f"gradio_api/call/ground/{call['event_id']}", timeout=120).text
    assert '"points"' in result and "DOE" not in result and "1234567" not in result
    assert not Path(uploaded).exists()
    assert httpx.get(url + f"gradio_api/file={uploaded}", timeout=30).status_code != 200  # nothing left to download
    assert not [p for p in cache.rglob("*") if "DOE" in p.name]


def test_a_rejected_upload_is_deleted_and_its_name_not_echoed(main_app):
    url, cache = main_app
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("SMITH^JANE_notes.png", b"not a png")}, timeout=60).json()[0]
    call = httpx.post(url + "gradio_api/call/ground", json={"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}},
                                                                    "new opacity", "rules"]}, timeout=60).json()
    result = httpx.get(url + f"gradio_api/call/ground/{call['event_id']}", timeout=120).text
    assert "event: error" in result and "SMITH" not in result and not Path(uploaded).exists()


def test_result_files_live_in_the_session_folder_and_go_when_the_page_closes(main_app, tmp_path):
    url, cache = main_app
    before = set(Path("/tmp").glob("legend_result_*"))
    prior = tmp_path / "prior.png"
    Image.fromarray((np.random.default_rng(0).random((96, 96)) * 255).astype(np.uint8)).save(prior)
    api = gradio_client.Client(url, verbose=False)
    tab = httpx.Client(timeout=None)  # what an open browser tab keeps open; closing it ends the session
    heartbeat = tab.send(tab.build_request("GET", url + f"gradio_api/heartbeat/{api.session_hash}"), stream=True)
    api.predict(gradio_client.handle_file(str(prior)), "new right lower lobe consolidation", steps=2,
                api_name="/generate")
    session = cache.resolve() / "legend_results" / hashlib.sha256(api.session_hash.encode()).hexdigest()[:24]
    results = [p for p in session.rglob("*") if p.is_file()]
    assert results and all(re.fullmatch(r"[0-9a-f]{16}", p.parent.name) for p in results)
    assert set(Path("/tmp").glob("legend_result_*")) == before  # no more folders that nothing deletes
    heartbeat.close()  # close the tab
    tab.close()
    deadline = time.time() + 40
    while session.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not session.exists()



@pytest.mark.parametrize("engine", ["embedded", "tiny-random"])
def test_api_reports_name_no_absolute_server_path(engine, tmp_path):
    from legend_demo.engines.registry import engine_info
    from legend_demo.ui.api import make_api
    from legend_demo.ui.config import AppConfig

    if not engine_info(engine).available:
        pytest.skip(f"{engine} cannot run here: {engine_info(engine).reason}")
    prior = tmp_path / "prior.png"
    Image.fromarray((np.random.default_rng(1).random((96, 96)) * 255).astype(np.uint8)).save(prior)
    _, api_generate = make_api(AppConfig())
    _, report, _ = api_generate(str(prior), "new right lower lobe consolidation", steps=2, engine=engine)
    text = json.dumps(report)
    leaks = [root for root in (str(ROOT), sys.prefix, "/tmp/", "/root/", "/home/", "/work/") if root in text]
    assert leaks == []


@pytest.mark.parametrize("options, fragment", [
    ({"num_samples": 0}, "num_samples=0"), ({"steps": 0.5}, "whole number"), ({"steps": 2.9}, "whole number"),
    ({"seed": 3.7}, "whole number"), ({"sigma_ratio": "wide"}, "must be a number"),
    ({"points": [{"x": 10, "y": 10, "confidence": 1e6}]}, "confidence"), ({"points": [{"x": True, "y": 10}]}, "number"),
    ({"points": [{"x": 500, "y": 10}]}, "outside"),
])
def test_generate_api_refuses_what_it_used_to_coerce(main_app, tmp_path, options, fragment):
    url, cache = main_app
    prior = tmp_path / "prior.png"
    Image.fromarray((np.random.default_rng(2).random((96, 96)) * 255).astype(np.uint8)).save(prior)
    before = set((cache / "legend_results").rglob("*")) if (cache / "legend_results").exists() else set()
    api = gradio_client.Client(url, verbose=False)
    with pytest.raises(gradio_client.exceptions.AppError, match=fragment) as caught:
        api.predict(gradio_client.handle_file(str(prior)), "new right lower lobe consolidation", api_name="/generate",
                    **{"steps": 2, **options})
    assert "Traceback" not in str(caught.value) and "Invalid input" in str(caught.value)
    after = set((cache / "legend_results").rglob("*")) if (cache / "legend_results").exists() else set()
    assert after <= before  # nothing generated, nothing written
