"""Issue 24: the second attack round on `python app.py --study DB`, on live servers (loopback only, bounded).

A foreign page logging the victim in (login CSRF) or out, in raw HTTP and in a real browser on a foreign origin;
blinding by payload size, checked on every byte count a reader can see; forged X-Forwarded-For addresses and
device cookies; the admin's unlock; a burst of 200 logins; the Content-Security-Policy in the browser; Gradio
repeating an oversized value. The servers run as shipped: no proxy is trusted unless a test says so.
"""
from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from legend_demo.study.db import connect
from legend_demo.study.images import png_chunk_types, png_length
from legend_demo.study.readers import add_reader
from test_security_attacks import ADMIN_PASSWORD, fn_index, post_login, raw_event, session_http
from test_study_ui import NO_B, RATING, client, free_port, launch_study_server, make_study, served_pngs, stop

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EVIL = "http://evil.test"


@dataclass
class Served:
    db: Path
    url: str
    log: Path
    pid: int

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")


def _serve(tmp: Path, readers: tuple[str, ...], env: dict[str, str] | None = None):
    db = make_study(tmp, readers=readers)
    port, log = free_port(), tmp / "server.log"
    server = launch_study_server(db, port, env=env, log=log)
    return server, Served(db, f"http://127.0.0.1:{port}/", log, server.pid)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study as shipped (no trusted proxy), for the CSRF, logout, CSP and echo attacks."""
    server, served = _serve(tmp_path_factory.mktemp("round2"), ("alice", "bob", "mallory", "dora"))
    yield served
    stop(server)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    """Another study as shipped, for the throttle attacks (its lockouts must not disturb the other tests)."""
    server, served = _serve(tmp_path_factory.mktemp("throttle"), ("alice", "bob"))
    yield served
    stop(server)


def _cookie_name(served: Served) -> str:
    return next(k for k in session_http(served.url, "dora").cookies.keys() if not k.endswith("_device"))


def _attempts(db: Path) -> int:
    conn = connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM login_attempts").fetchone()[0]
    finally:
        conn.close()


def _sessions_of(db: Path, name: str) -> int:
    conn = connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM sessions s JOIN readers r ON r.id = s.reader_id WHERE r.name = ?",
                            (name,)).fetchone()[0]
    finally:
        conn.close()


# -- §1: login CSRF --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},  # the raw attack
    {"Origin": EVIL},  # a browser without Fetch Metadata
    {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"},  # another port of this host
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # a sandboxed frame
    {"Referer": EVIL + "/attack.html"},
])
def test_a_login_posted_by_another_site_is_refused_without_a_cookie(study, headers):
    before = _attempts(study.db)
    answer = httpx.post(study.url + "login", data={"username": "mallory", "password": "mallory-password", "via": "form"},
                        headers=headers, timeout=30)
    assert answer.status_code == 403 and "another site" in answer.text
    assert "set-cookie" not in answer.headers and _attempts(study.db) == before  # no session, not even an attempt


def test_a_login_from_the_studys_own_page_works(study):
    same = {"Origin": study.origin, "Sec-Fetch-Site": "same-origin"}
    answer = httpx.post(study.url + "login", data={"username": "alice", "password": "alice-password", "via": "form"},
                        headers=same, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "./"
    assert "HttpOnly" in answer.headers["set-cookie"]


def _attack_page(target: str, action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (f'<!doctype html><html><body><h1>Free CME credits</h1><form id="f" method="post" action="{target}{action}">'
            f'{inputs}</form><script>document.getElementById("f").submit();</script></body></html>')


def _serve_attack(context, origin: str, html_text: str) -> str:
    """A page at `origin` (another site, answered by the browser itself) that runs `html_text`."""
    url = f"{origin}/attack.html"
    context.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=html_text))
    return url


def _log_in(page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("#username", name)
    page.fill("#password", f"{name}-password")
    page.click("#login-button")
    page.get_by_text("Case 1 of 8").wait_for(timeout=30_000)


@pytest.mark.parametrize("attacker", [EVIL, "http://127.0.0.1:{other}"])
def test_a_foreign_page_cannot_log_the_victim_in_as_the_attacker_in_the_browser(study, browser, attacker):
    attacker = attacker.format(other=free_port())  # also a same-site page on another port of this host
    cookie = _cookie_name(study)
    mallory_sessions = _sessions_of(study.db, "mallory")
    context = browser.new_context()
    try:
        page = context.new_page()
        attack = _serve_attack(context, attacker, _attack_page(study.url, "login", {
            "username": "mallory", "password": "mallory-password", "via": "form"}))
        answer = page.goto(attack)
        page.wait_for_url(study.url + "login", timeout=20_000)  # the form was posted: the study answered
        assert "another site" in page.inner_text("#login-message")
        assert cookie not in {c["name"] for c in context.cookies()}  # the victim's browser holds no session
        page.goto(study.url)
        assert page.url.endswith("/login")  # not logged in as mallory
        _log_in(page, study.url, "alice")  # the victim logs in; the attack again, now against a live session
        before = {c["name"]: c["value"] for c in context.cookies()}[cookie]
        page.goto(attack)
        page.wait_for_url(study.url + "login", timeout=20_000)
        assert {c["name"]: c["value"] for c in context.cookies()}[cookie] == before  # still alice's session
        page.goto(study.url)
        page.get_by_text("Case 1 of 8").wait_for(timeout=30_000)
    finally:
        context.close()
    assert answer is not None and _sessions_of(study.db, "mallory") == mallory_sessions
    assert "study login refused: posted by another site" in study.log.read_text()


# -- §4: logout by a foreign page ------------------------------------------------------------------------------
def test_logout_is_post_only_and_refused_from_another_origin_over_http(study):
    http = session_http(study.url, "bob")
    cookie = _cookie_name(study)
    token = http.cookies[cookie]
    page = http.get(study.url + "logout")
    assert page.status_code == 200 and 'method="post"' in page.text  # a link shows a button, ends nothing
    refused = http.post(study.url + "logout", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert httpx.get(study.url + "config", cookies={cookie: token}, timeout=30).status_code == 200  # still live
    done = http.post(study.url + "logout", headers={"Origin": study.origin, "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303 and httpx.get(study.url + "config", cookies={cookie: token}, timeout=30).status_code == 401


def test_a_foreign_page_cannot_log_the_victim_out_in_the_browser(study, browser):
    cookie = _cookie_name(study)
    context = browser.new_context()
    try:
        page = context.new_page()
        _log_in(page, study.url, "alice")
        token = {c["name"]: c["value"] for c in context.cookies()}[cookie]
        link = _serve_attack(context, EVIL, f'<a id="go" href="{study.url}logout">win</a>'
                                            '<script>document.getElementById("go").click();</script>')
        page.goto(link)  # a top-level GET from another site
        page.wait_for_url(study.url + "logout", timeout=20_000)
        assert page.locator("#logout-button").count() == 1
        form = _serve_attack(context, "http://evil.test:8080", _attack_page(study.url, "logout", {}))
        page.goto(form)  # a cross-site POST
        page.wait_for_url(study.url + "logout", timeout=20_000)
        assert "another site" in page.inner_text("body")
        assert {c["name"]: c["value"] for c in context.cookies()}.get(cookie) == token  # the cookie is untouched
        assert httpx.get(study.url + "config", cookies={cookie: token}, timeout=30).status_code == 200
        page.goto(study.url)
        page.get_by_text("Case 1 of 8").wait_for(timeout=30_000)
        page.click("#study-logout")  # the study's own button still logs out
        page.wait_for_url(re.compile(r".*/login\?bye=1$"), timeout=20_000)
        assert httpx.get(study.url + "config", cookies={cookie: token}, timeout=30).status_code == 401
    finally:
        context.close()


# -- §3: the throttle's client key -----------------------------------------------------------------------------
def test_forged_forwarded_addresses_are_ignored_by_default(throttled):
    statuses = [post_login(throttled.url, "bob", f"guess-{i}", f"203.0.113.{i}").status_code for i in range(30)]
    assert statuses.count(401) == 5 and statuses.count(429) == 25  # one client, however many addresses it claims
    conn = connect(throttled.db)
    clients = {r[0] for r in conn.execute("SELECT client FROM login_attempts")}
    conn.close()
    assert clients == {"127.0.0.1"}


def test_a_forged_scheme_or_address_changes_nothing_without_a_trusted_proxy(throttled):
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.99",
              "Origin": "https" + throttled.origin[4:], "Sec-Fetch-Site": "cross-site"}
    refused = httpx.post(throttled.url + "login", data={"username": "alice", "password": "alice-password"},
                         headers=forged, timeout=30)
    assert refused.status_code == 403  # the scheme is still http: an https Origin is another origin
    plain = httpx.post(throttled.url + "login", data={"username": "alice", "password": "alice-password"},
                       headers={"X-Forwarded-Proto": "https"}, timeout=30)
    assert plain.status_code == 200 and "secure" not in plain.headers["set-cookie"].lower()
    assert "198.51.100.99" not in throttled.log.read_text()


def test_a_reader_on_her_own_browser_is_spared_a_lock_on_her_shared_address_and_the_admin_unlocks(throttled):
    alices_browser = httpx.Client(timeout=30)
    assert post_login(throttled.url, "alice", "alice-password", http=alices_browser).status_code == 200
    device_cookie = next(k for k in alices_browser.cookies.keys() if k.endswith("_device"))
    statuses = [post_login(throttled.url, "alice", f"guess-{i}").status_code for i in range(8)]  # same address
    assert statuses.count(401) == 5 and post_login(throttled.url, "alice", "alice-password").status_code == 429
    real_id = alices_browser.cookies[device_cookie].split(".")[0]
    forged = [f"{real_id}.AAAA", "made-up.value", "x" * 300]  # her device id with a made-up signature, and junk
    for value in forged:  # a device cookie the server did not sign is no device
        assert httpx.post(throttled.url + "login", data={"username": "alice", "password": "alice-password"},
                          cookies={device_cookie: value}, timeout=30).status_code == 429
    assert post_login(throttled.url, "alice", "alice-password", http=alices_browser).status_code == 200  # her browser
    unlocked = subprocess.run([sys.executable, "-m", "legend_demo", "study", "unlock", "--db", str(throttled.db),
                               "--name", "alice"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert unlocked.returncode == 0 and "may log in again" in unlocked.stdout
    assert post_login(throttled.url, "alice", "alice-password").status_code == 200  # a new device, at once


# -- §5: bounded password checks -------------------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_a_burst_of_200_logins_is_checked_a_few_at_a_time(tmp_path):
    env = {"LEGEND_STUDY_TRUSTED_PROXIES": "127.0.0.1"}  # 200 clients, so that no lockout answers for scrypt
    server, served = _serve(tmp_path, ("alice",), env)
    patient = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=250))  # 200 checks take a while here

    def guess(i: int) -> int:
        return patient.post(served.url + "login", data={"username": f"user{i}", "password": "guess"},
                            headers={"X-Forwarded-For": f"198.18.{i // 250}.{i % 250}"}).status_code

    try:
        guess(999)  # warm: the dummy hash for unknown names exists
        base, peak, done = _rss_mb(served.pid), [0.0], threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mb(served.pid))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
                burst = [pool.submit(guess, i) for i in range(200)]
                time.sleep(1.0)
                start = time.perf_counter()
                page = httpx.get(served.url + "login", timeout=60)
                page_s = time.perf_counter() - start
                statuses = [f.result() for f in burst]
        finally:
            done.set()
            watcher.join()
    finally:
        patient.close()
        stop(server)
    rise = peak[0] - base
    print(f"\n200 simultaneous logins: server RSS +{rise:.0f} MB, login page {page_s:.2f} s during the burst")
    assert statuses.count(401) == 200 and page.status_code == 200
    assert rise < 160  # ≤ 4 scrypt checks (16 MiB each) at once; unbounded, the burst took ≈ 320 MB
    assert page_s < 2.0


# -- §5: Content-Security-Policy -----------------------------------------------------------------------------
RECORD_VIOLATIONS = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                     "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


def test_the_study_page_works_under_its_content_security_policy(study, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        policies = {}
        page.on("response", lambda r: r.status == 200 and policies.setdefault(r.url.split("?")[0],
                                                                               r.headers.get("content-security-policy")))
        posted = []
        page.on("request", lambda r: r.method == "POST" and r.url.endswith("/login") and posted.append(r))
        _log_in(page, study.url, "dora")
        # The form's own post names this origin, so browsers without Fetch Metadata log in too.
        assert posted[0].all_headers().get("origin") == study.origin
        page.locator("#study-images canvas").first.wait_for(timeout=20_000)
        for q, answer in enumerate(["4 good", "3 acceptable", "5 excellent", "Real", "2 unsure", "Yes"]):
            page.locator(f"#study-q-a-{q}").get_by_label(answer, exact=True).check()
        page.locator("#study-submit").click()
        page.locator("#study-progress").get_by_text("Case 2 of 8").wait_for(timeout=20_000)  # scripts, styles, images, the queue: all work
        page.locator("#study-images canvas").first.wait_for(timeout=20_000)
        assert page.evaluate("window.__csp") == []  # nothing of the page was blocked
        page.evaluate("() => { const d = document.createElement('div');"
                      " d.innerHTML = '<img src=x onerror=\"window.__pwned = 1\">'; document.body.appendChild(d); }")
        page.wait_for_function("window.__csp.length > 0", timeout=10_000)
        assert page.evaluate("window.__pwned") is None  # an injected inline handler does not run
        admin = context.new_page()  # the admin's summary page too
        admin.add_init_script(RECORD_VIOLATIONS)
        admin.goto(study.url + "login")
        admin.fill("#username", "admin")
        admin.fill("#password", ADMIN_PASSWORD)
        admin.click("#login-button")
        admin.locator("#study-admin-title").wait_for(timeout=30_000)
        admin.get_by_text("Readers: progress").first.wait_for(timeout=30_000)
        assert admin.evaluate("window.__csp") == []
    finally:
        context.close()
    page_policy = policies[study.url]
    assert "script-src 'nonce-" in page_policy and "'unsafe-inline'" not in page_policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in page_policy and "form-action 'self'" in page_policy
    assert "default-src 'none'" in policies[study.url + "login"]


# -- §5: Gradio repeating a 100 kB value ---------------------------------------------------------------------
def test_an_oversized_or_invalid_answer_is_not_repeated_back(study):
    http = session_http(study.url, "mallory")
    config = http.get(study.url + "config").json()
    submit = fn_index(config, "study_submit")
    huge = "A" * 100_000
    join = http.post(study.url + "gradio_api/queue/join",
                     json={"data": [0, huge, *RATING[1:], *NO_B, ""], "fn_index": submit, "session_hash": "echo-1"})
    assert join.status_code == 413 and huge[:1000] not in join.text
    invalid = "B" * 10_000
    answer = raw_event(http, study.url, submit, [0, invalid, *RATING[1:], *NO_B, ""], "echo-2")
    text = json.dumps(answer)
    assert not answer["success"] and "not one of the choices" in text and invalid[:50] not in text and len(text) < 2000


# -- §2: blinding by payload size ---------------------------------------------------------------------------
def _real_film_study(folder: Path) -> Path:
    """One case made of a real film: prior and real follow-up from pydicom-data's RG1_UNCI chest CR (the follow-up
    a shifted crop: real texture), and a candidate the app makes from the prior with its default engine."""
    import cv2
    from PIL import Image
    from pydicom.data import get_testdata_file

    from legend_demo.core.image_io import load_image
    from legend_demo.study.generate import generate_missing
    from legend_demo.study.manifest import read_manifest
    from legend_demo.study.studies import create_study

    film = load_image(get_testdata_file("RG1_UNCI.dcm")).array  # (H, W) [0, 1]
    quarter = cv2.resize(film, (film.shape[1] // 4, film.shape[0] // 4), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True)
    for name, image in (("prior.png", quarter[:-8, :-8]), ("real.png", quarter[8:, 8:])):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / name)
    text = "new right lower lobe consolidation"
    (folder / "manifest.json").write_text(json.dumps({"name": "real film", "cases": [{
        "id": "rg1", "prior": "prior.png", "text": text,
        "candidates": [{"source": "real", "path": "real.png"}, {"source": "legend", "path": None}]}]}))
    manifest = generate_missing(read_manifest(folder / "manifest.json"))
    db = folder / "study.db"
    create_study(db, manifest, seed=1, admin_password=ADMIN_PASSWORD)
    conn = connect(db)
    add_reader(conn, "rita", "rita-password")
    conn.close()
    return db


def test_a_real_and_an_app_made_follow_up_cannot_be_told_apart_by_any_byte_count(tmp_path):
    db = _real_film_study(tmp_path / "film")
    port = free_port()
    server = launch_study_server(db, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        http = session_http(url, "rita")
        config = http.get(url + "config").json()
        screen_fn, submit_fn = fn_index(config, "study_screen"), fn_index(config, "study_submit")
        seen = []
        for step in range(2):  # both screens of the case: one shows the real follow-up, one the app-made one
            data = json.dumps(raw_event(http, url, screen_fn, [], f"rita-{step}")["output"]["data"])  # less timings
            pngs = served_pngs(data)
            urls = re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", data)
            seen.append({"message": len(data.encode()), "urls": [len(u) for u in urls], "pngs": pngs})
            answer = raw_event(http, url, submit_fn, [0, *RATING, *NO_B, ""], f"rita-{step}")  # same page
            assert answer["success"]
    finally:
        stop(server)
    conn = connect(db)
    shown = [r[0] for r in conn.execute("SELECT c.source FROM ratings r JOIN candidates c ON c.id = r.candidate_id ORDER BY r.id")]
    conn.close()
    assert sorted(shown) == ["legend", "real"]
    real, made = (seen[shown.index(source)] for source in ("real", "legend"))
    assert not np.array_equal(real["pngs"][1], made["pngs"][1])  # different images …
    width, height = (int.from_bytes(real["pngs"][1][16:20], "big"), int.from_bytes(real["pngs"][1][20:24], "big"))
    lengths = {len(p) for p in real["pngs"] + made["pngs"]}
    assert lengths == {png_length(width, height)}  # … every PNG of the case: one length, set by its pixel size
    assert set(real["urls"] + made["urls"]) == {len(base64.b64encode(bytes(png_length(width, height)))) + 22}
    assert real["message"] == made["message"]  # the whole answer, as the browser receives it: same byte count
    assert all(png_chunk_types(p) == [b"IHDR", b"IDAT", b"IEND"] for p in real["pngs"] + made["pngs"])
