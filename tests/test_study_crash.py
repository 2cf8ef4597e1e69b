"""Crash safety: the serving process is SIGKILLed mid-session; after a restart no submitted rating is lost
or duplicated and the reader resumes at the right case."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from legend_demo.study.db import connect
from test_study_ui import RATING, NO_B, PROGRESS, client, free_port, launch_study_server, make_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ratings(db) -> list[tuple[int, int]]:
    conn = connect(db)
    try:
        return [tuple(r) for r in conn.execute("SELECT position, candidate_id FROM ratings ORDER BY position")]
    finally:
        conn.close()


@pytest.mark.slow
def test_server_killed_mid_session_loses_and_duplicates_nothing(tmp_path):
    db = make_study(tmp_path)
    port = free_port()
    server = launch_study_server(db, port)
    try:
        reader = client(f"http://127.0.0.1:{port}/", "alice")
        reader.predict(api_name="/study_screen")
        cookies = dict(reader.cookies)
        for _ in range(3):
            reader.predict(*RATING, *NO_B, "", api_name="/study_submit")
        # a fourth submission is in flight when the server dies
        job = reader.submit(*RATING, *NO_B, "", api_name="/study_submit")
        server.send_signal(signal.SIGKILL)
        server.wait()
        job.status()
    finally:
        server.kill()
    before = _ratings(db)
    assert len(before) in (3, 4) and [p for p, _ in before] == list(range(1, len(before) + 1))

    restarted = launch_study_server(db, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        resumed = client(url, cookies=cookies).predict(api_name="/study_screen")  # the browser's cookie still works
        assert resumed[PROGRESS] == f"**Case {len(before) + 1} of 8**"
        again = client(url, "alice")
        again.predict(api_name="/study_screen")
        again.predict(*RATING, *NO_B, "", api_name="/study_submit")
    finally:
        restarted.kill()
        restarted.wait()
    after = _ratings(db)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert len({c for _, c in after}) == len(after)


WRITER = textwrap.dedent("""
    import sys
    from legend_demo.study.db import connect
    from legend_demo.study.ratings import Rating, submit_and_next
    from legend_demo.study.reading import next_case
    conn = connect(sys.argv[1])
    view = next_case(conn, 1)
    while view is not None:
        position = view.position
        view = submit_and_next(conn, 1, position, [Rating(3, 3, 3, True, 3, "yes", time_on_case_s=0.1)])
        print(position, flush=True)  # printed only after the commit
""")


@pytest.mark.slow
def test_writer_killed_between_or_during_commits_keeps_every_acknowledged_rating(tmp_path):
    db = make_study(tmp_path)
    env = {**os.environ, "PYTHONPATH": ROOT}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, env=env, text=True)
    acknowledged = [int(writer.stdout.readline()) for _ in range(2)]
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    stored = _ratings(db)
    assert [p for p, _ in stored][: len(acknowledged)] == acknowledged  # nothing acknowledged is lost
    assert [p for p, _ in stored] == list(range(1, len(stored) + 1))  # no gaps, no duplicates
    conn = connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    from legend_demo.study.reading import next_position

    assert next_position(conn, 1) == (len(stored) + 1 if len(stored) < 8 else None)
