"""Study security without a server: session expiry and rotation, throttle arithmetic and its counting,
login outcomes, reserved admin name, blinded image rendering, and flagged cases skipped for everyone."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from legend_demo.study.auth import BAD_LOGIN, login
from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.flags import clear_flag, flagged_cases
from legend_demo.study.images import case_pngs, display_size, png_bytes, png_chunk_types
from legend_demo.study.manifest import read_manifest
from legend_demo.study.readers import add_reader
from legend_demo.study.reading import next_case, progress
from legend_demo.study.screen import next_screen
from legend_demo.study.sessions import SessionPolicy, find_session, open_session, purge_expired
from legend_demo.study.studies import create_study
from legend_demo.study.throttle import ThrottlePolicy, account_key, begin_attempt, lock_wait

pytestmark = pytest.mark.slow  # reader-study sessions and throttling: the slow tier (python -m pytest -m slow)

FAST = ThrottlePolicy(pair_limit=3, client_limit=6, account_limit=8, base_lock_s=10, max_lock_s=40)


@pytest.fixture()
def study(tmp_path):
    root = tmp_path / "demo"
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(root)), seed=1, admin_password="admin-password")
    conn = connect(db)
    reader = add_reader(conn, "alice", "alice-password")
    yield conn, reader, root
    conn.close()


def test_sessions_expire_when_idle_or_too_old_and_are_deleted(study):
    conn, reader, _ = study
    policy = SessionPolicy(idle_s=60, max_age_s=300, touch_every_s=10)
    token = open_session(conn, "reader", reader, now=1000.0)
    assert find_session(conn, token, policy, now=1050.0).reader_id == reader
    assert find_session(conn, token, policy, now=1100.0) is not None  # touched at 1050: idle clock restarted
    assert find_session(conn, token, policy, now=1161.0) is None  # idle > 60 s
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    busy = open_session(conn, "reader", reader, now=2000.0)
    for now in range(2000, 2300, 30):
        assert find_session(conn, busy, policy, now=float(now)) is not None
    assert find_session(conn, busy, policy, now=2301.0) is None  # max age, however active
    stale = open_session(conn, "admin", now=0.0)
    assert purge_expired(conn, policy, now=5000.0) == 1 and find_session(conn, stale, policy, now=5000.0) is None
    with pytest.raises(ValueError):
        open_session(conn, "admin", reader)
    for bad in (None, "", 7, "x" * 500):
        assert find_session(conn, bad, policy) is None


def test_session_policy_from_environment():
    assert SessionPolicy.from_env({"LEGEND_STUDY_IDLE_MINUTES": "5", "LEGEND_STUDY_SESSION_HOURS": "2"}).idle_s == 300
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(ValueError, match="LEGEND_STUDY_IDLE_MINUTES"):
            SessionPolicy.from_env({"LEGEND_STUDY_IDLE_MINUTES": bad})


def test_lockouts_grow_and_are_capped():
    policy = ThrottlePolicy(base_lock_s=30, max_lock_s=900)
    assert lock_wait([1.0] * 4, 5, policy, now=2.0) == 0.0
    assert lock_wait([1.0] * 5, 5, policy, now=1.0) == 30.0
    assert lock_wait([1.0] * 6, 5, policy, now=1.0) == 60.0
    assert lock_wait([1.0] * 20, 5, policy, now=1.0) == 900.0
    assert lock_wait([1.0] * 5, 5, policy, now=100.0) == 0.0  # served


def test_login_locks_the_pair_then_lets_the_reader_in_from_elsewhere_and_after_the_lock(study, monkeypatch):
    conn, reader, _ = study
    clock = [10_000.0]
    monkeypatch.setattr("legend_demo.study.throttle.time.time", lambda: clock[0])
    outcomes = [login(conn, "alice", f"wrong-{i}", "10.0.0.1", FAST) for i in range(5)]
    assert [o.message == BAD_LOGIN for o in outcomes] == [True, True, True, False, False]
    assert outcomes[3].retry_after_s == 10.0 and "wait 1 minute" in outcomes[3].message
    assert login(conn, "alice", "alice-password", "10.0.0.1", FAST).token is None  # locked: even the right password
    assert login(conn, "alice", "alice-password", "10.0.0.2", FAST).role == "reader"  # another client: fine
    clock[0] += 11
    assert login(conn, "alice", "alice-password", "10.0.0.1", FAST).token is not None  # the lock has passed


def test_one_login_rotates_the_browsers_old_token(study):
    conn, _, _ = study
    first = login(conn, "alice", "alice-password", "c", FAST).token
    second = login(conn, "alice", "alice-password", "c", FAST, replaces=first).token
    policy = SessionPolicy()
    assert find_session(conn, first, policy) is None and find_session(conn, second, policy) is not None


def test_admin_logs_in_by_name_and_no_reader_may_take_it(study):
    conn, _, _ = study
    assert login(conn, "ADMIN ", "admin-password", "c", FAST).role == "admin"
    assert login(conn, "admin", "alice-password", "c", FAST).token is None
    for name in ("admin", "Admin", " ADMIN "):
        with pytest.raises(ValueError, match="admin's login name"):
            add_reader(conn, name, "long-enough-password")
    assert login(conn, 7, "x", "c", FAST).token is None and login(conn, "alice", None, "c", FAST).token is None


def test_attempts_are_counted_before_the_password_is_checked(study):
    conn, _, _ = study
    ids = [begin_attempt(conn, "bob", "10.9.9.9", FAST, now=50.0) for _ in range(5)]
    assert [a is not None for a, _ in ids] == [True, True, True, False, False]  # in-flight guesses count already
    stored = {r[0] for r in conn.execute("SELECT account_key FROM login_attempts")}
    assert stored == {account_key("bob")} and account_key(" BOB ") == account_key("bob")


def test_served_pngs_share_the_priors_size_and_carry_no_metadata(tmp_path):
    prior, small = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200), dtype=np.uint8)).save(prior)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "LeGend engine")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)).save(small, pnginfo=info, dpi=(72, 72))
    pngs = case_pngs([prior, small], long_side=600)
    sizes = [Image.open(io.BytesIO(p)).size for p in pngs]
    assert sizes[0] == sizes[1] and sizes[0][0] == display_size((300, 200), 600)[0] == 400
    assert sizes[0][1] > 600  # 600 film rows, then the one study band
    assert all(set(png_chunk_types(p)) == {b"IHDR", b"IDAT", b"IEND"} for p in pngs)
    assert Image.open(io.BytesIO(pngs[1])).info == {}
    square = np.asarray(Image.open(io.BytesIO(pngs[1])))[:600]  # 64² into 400×600: kept square, centred on black
    rows = np.flatnonzero(square.max(axis=1) > 0)
    assert square[:99].max() == 0 and square[501:].max() == 0 and rows[-1] - rows[0] + 1 == 400
    bands = [np.asarray(Image.open(io.BytesIO(p)))[600:] for p in pngs]
    assert np.array_equal(bands[0], bands[1])  # the same study label under every image


def test_an_app_made_follow_up_is_shown_without_its_own_band_like_a_real_one(tmp_path):
    """Blinding: the export's SYNTHETIC band would give a candidate away; the study cuts it and adds its own."""
    from legend_demo.core.export import save_synthetic_png

    film = np.random.default_rng(2).random((300, 200)).astype(np.float32)
    real, made = tmp_path / "real.png", tmp_path / "made.png"
    Image.fromarray(np.round(film * 255).astype(np.uint8)).save(real)
    save_synthetic_png(film, made, engine="embedded", checkpoint="test")
    assert Image.open(made).size[1] > 300  # the export has its band below the film
    shown_real, shown_made = (np.asarray(Image.open(io.BytesIO(p))) for p in case_pngs([real, made], long_side=300))
    assert shown_real.shape == shown_made.shape
    np.testing.assert_array_equal(shown_real, shown_made)  # same film, same band: nothing tells them apart
    with pytest.raises(ValueError):
        png_bytes(np.zeros((4, 4), np.float32))


def test_a_broken_case_is_flagged_skipped_for_everyone_and_can_be_restored(study, tmp_path):
    conn, reader, root = study
    bob = add_reader(conn, "bob", "bob-password")
    first = next_case(conn, reader)
    key = conn.execute("SELECT c.case_key FROM slots s JOIN cases c ON c.id = s.case_id WHERE s.reader_id = ? AND s.position = ?",
                       (reader, first.position)).fetchone()[0]
    backup = tmp_path / "backup.png"
    shutil.copy(first.prior, backup)
    Image.fromarray(np.full((80, 80), 9, np.uint8)).save(first.prior)  # replaced after creation
    screen, skipped = next_screen(conn, reader)
    assert skipped == 1 and screen.view.skipped == 1 and screen.view.progress_label == "Case 1 of 6"
    assert [f["case"] for f in flagged_cases(conn)] == [key] and "changed" in flagged_cases(conn)[0]["reason"]
    assert progress(conn, bob) == (0, 6)  # skipped for every reader, not only the one who met it
    with pytest.raises(ValueError, match="not flagged"):
        clear_flag(conn, "no-such-case")
    shutil.copy(backup, first.prior)
    clear_flag(conn, key)
    assert flagged_cases(conn) == [] and progress(conn, bob) == (0, 8)
