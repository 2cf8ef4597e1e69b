"""Twelve simulated readers submitting at once (threads, one connection each) leave consistent data."""
from __future__ import annotations

import pytest
import threading

from legend_demo.study.db import connect
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.ratings import Rating, submit_and_next
from legend_demo.study.readers import add_reader
from legend_demo.study.reading import next_case, progress
from legend_demo.study.studies import create_study
from legend_demo.study.summary import summarise

pytestmark = pytest.mark.slow  # concurrent reader threads: the slow tier (python -m pytest -m slow)

READERS = 12


def _read_everything(db, reader_id: int, errors: list, barrier: threading.Barrier) -> None:
    conn = connect(db)
    try:
        barrier.wait()
        view = next_case(conn, reader_id)
        while view is not None:
            rating = Rating(1 + (reader_id + view.position) % 5, 3, 4, view.position % 2 == 0, 2, "yes", f"r{reader_id}")
            submit_and_next(conn, reader_id, view.position, [rating])  # double submission must be harmless
            view = submit_and_next(conn, reader_id, view.position, [rating])
    except Exception as exc:  # noqa: BLE001 — reported by the main thread
        errors.append(repr(exc))
    finally:
        conn.close()


def test_concurrent_readers_produce_consistent_data(tmp_path):
    db = tmp_path / "s.db"
    create_study(db, read_manifest(write_demo_study(tmp_path / "demo")), seed=2)
    conn = connect(db)
    reader_ids = [add_reader(conn, f"reader{i:02d}", "reader-password") for i in range(READERS)]
    errors: list[str] = []
    barrier = threading.Barrier(READERS + 1)
    threads = [threading.Thread(target=_read_everything, args=(db, r, errors, barrier)) for r in reader_ids]
    for thread in threads:
        thread.start()
    barrier.wait()
    summaries = [summarise(conn) for _ in range(3)]  # reading while they write
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    total = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    distinct = conn.execute("SELECT COUNT(DISTINCT reader_id || ':' || candidate_id) FROM ratings").fetchone()[0]
    assert total == distinct == READERS * 8
    for reader_id in reader_ids:
        assert progress(conn, reader_id) == (8, 8)
        comments = {r[0] for r in conn.execute("SELECT comment FROM ratings WHERE reader_id = ?", (reader_id,))}
        assert comments == {f"r{reader_id}"}  # nobody's rating landed on another reader
    assert all(0 <= s.ratings <= total for s in summaries)
    final = summarise(conn)
    assert final.ratings == total and final.readers == READERS and final.agreement_candidates == 8
