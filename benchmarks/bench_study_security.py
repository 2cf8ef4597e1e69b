"""Reader-study server under load and under kill -9 (issue 12 figures), on the real `python app.py --study DB`.

    python benchmarks/bench_study_security.py [--readers 30] [--kill-rounds 5] [--kill-readers 10]

1. Concurrent readers: N readers log in at once (each its own gradio_client over loopback) and rate all their
   cases as fast as the server answers. Reported: requests, errors, latency p50/p95, ratings stored vs expected,
   duplicates, SQLite integrity. Goal: N ≥ 25 with 0 errors.
   Each reader's client waits up to CLIENT_TIMEOUT_S for an answer, as a browser would.
2. kill -9: in each round K readers submit continuously; once all are logged in, after a random 0.5–3 s, the server gets SIGKILL. A rating
   counts as acknowledged when its submit answered "Saved.". Lost = acknowledged but not stored; duplicated =
   more than one row for a (reader, image). The server is restarted and every reader must resume at the first
   case without a stored rating. Goal: 0 lost, 0 duplicated, every resume right.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RATING = ("4", "3", "5", "synthetic", "2", "partly", *(None,) * 6, "")
PROGRESS, MESSAGE = 2, 0
CLIENT_TIMEOUT_S = 60.0  # a browser waits; gradio_client's own 5 s default would count a slow login as an error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_study(folder: Path, readers: int) -> Path:
    from legend_demo.study.db import connect
    from legend_demo.study.demo import write_demo_study
    from legend_demo.study.manifest import read_manifest
    from legend_demo.study.readers import add_reader
    from legend_demo.study.studies import create_study

    db = folder / "study.db"
    create_study(db, read_manifest(write_demo_study(folder / "demo")), seed=7, admin_password="admin-password")
    conn = connect(db)
    for i in range(readers):
        add_reader(conn, f"reader{i:02d}", f"reader{i:02d}-password")
    conn.close()
    return db


def start_server(db: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--study", str(db), "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("study server did not start")


def case_number(progress: str) -> int | None:
    """'**Case 3 of 8**' → 3 (None on the done screen)."""
    parts = progress.strip("*").split()
    return int(parts[1]) if len(parts) == 4 and parts[0] == "Case" else None


def concurrent_readers(readers: int) -> dict:
    from gradio_client import Client

    from legend_demo.study.db import connect

    folder = Path(tempfile.mkdtemp(prefix="bench_study_"))
    db, port = make_study(folder, readers), free_port()
    server = start_server(db, port)
    url, barrier = f"http://127.0.0.1:{port}/", threading.Barrier(readers)
    latencies, logins, errors, lock = [], [], [], threading.Lock()

    def read_all(i: int) -> None:
        try:
            barrier.wait()
            start = time.perf_counter()
            client = Client(url, auth=(f"reader{i:02d}", f"reader{i:02d}-password"), verbose=False,
                            httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
            login_s = time.perf_counter() - start
            start = time.perf_counter()
            screen = client.predict(api_name="/study_screen")
            timings = [time.perf_counter() - start]
            for expected in range(1, 9):
                if case_number(screen[PROGRESS]) != expected:
                    raise AssertionError(f"reader{i:02d} expected case {expected}, saw {screen[PROGRESS]!r}")
                start = time.perf_counter()
                screen = client.predict(*RATING, api_name="/study_submit")
                timings.append(time.perf_counter() - start)
            if "Study complete" not in str(screen[1]):
                raise AssertionError(f"reader{i:02d} did not finish: {screen[PROGRESS]!r}")
            with lock:
                latencies.extend(timings)
                logins.append(login_s)
        except Exception as exc:  # noqa: BLE001 - counted
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    wall = time.perf_counter()
    threads = [threading.Thread(target=read_all, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - wall
    server.kill()
    server.wait()
    conn = connect(db)
    stored = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    distinct = conn.execute("SELECT COUNT(DISTINCT reader_id || ':' || candidate_id) FROM ratings").fetchone()[0]
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    latencies.sort()
    return {"readers": readers, "requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "login_p50_s": statistics.median(logins) if logins else float("nan"),
            "login_max_s": max(logins) if logins else float("nan"),
            "p50_s": statistics.median(latencies) if latencies else float("nan"),
            "p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
            "wall_s": wall, "stored": stored, "expected": readers * 8, "duplicates": stored - distinct,
            "integrity": integrity}


def kill_rounds(rounds: int, readers: int, seed: int = 0) -> list[dict]:
    from gradio_client import Client

    from legend_demo.study.db import connect

    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="bench_kill_"))
    db = make_study(folder, readers)
    acknowledged: dict[str, set[int]] = {f"reader{i:02d}": set() for i in range(readers)}
    results = []
    for round_index in range(rounds):
        port = free_port()
        server = start_server(db, port)
        url, stop, ready = f"http://127.0.0.1:{port}/", threading.Event(), threading.Semaphore(0)

        def submit_until_killed(name: str) -> None:
            try:
                client = Client(url, auth=(name, f"{name}-password"), verbose=False)
                screen = client.predict(api_name="/study_screen")
                ready.release()
                while not stop.is_set() and (number := case_number(screen[PROGRESS])) is not None:
                    screen = client.predict(*RATING, api_name="/study_submit")
                    if screen[MESSAGE] == "Saved.":
                        acknowledged[name].add(number)  # only after the server answered
            except Exception:  # noqa: BLE001 - the server is being killed
                pass

        active = [name for name, done in acknowledged.items() if len(done) < 8]
        threads = [threading.Thread(target=submit_until_killed, args=(name,), daemon=True) for name in active]
        for t in threads:
            t.start()
        for _ in threads:  # every reader logged in and looking at a case
            ready.acquire(timeout=120)
        time.sleep(rng.uniform(0.5, 3.0))
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        conn = connect(db)
        rows = conn.execute("SELECT p.name, r.position FROM ratings r JOIN readers p ON p.id = r.reader_id").fetchall()
        duplicates = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT reader_id || ':' || candidate_id) FROM ratings").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        stored = {name: {p for n, p in rows if n == name} for name in acknowledged}
        lost = sum(len(acknowledged[n] - stored[n]) for n in acknowledged)
        gaps = sum(stored[n] != set(range(1, len(stored[n]) + 1)) for n in stored)
        # restart: every reader must resume at the first case without a stored rating
        port = free_port()
        server = start_server(db, port)
        wrong_resume = 0
        for name in acknowledged:
            screen = Client(f"http://127.0.0.1:{port}/", auth=(name, f"{name}-password"), verbose=False).predict(
                api_name="/study_screen")
            expected = len(stored[name]) + 1 if len(stored[name]) < 8 else None
            wrong_resume += case_number(screen[PROGRESS]) != expected
        server.kill()
        server.wait()
        results.append({"round": round_index + 1, "acknowledged": sum(len(v) for v in acknowledged.values()),
                        "stored": len(rows), "lost": lost, "duplicated": duplicates, "gaps": gaps,
                        "wrong_resume": wrong_resume, "integrity": integrity})
    return results


def main() -> None:
    threading.excepthook = lambda args: None  # gradio_client's reader threads complain when the server is killed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=30, help="concurrent readers (goal ≥ 25)")
    parser.add_argument("--kill-rounds", type=int, default=5)
    parser.add_argument("--kill-readers", type=int, default=10)
    args = parser.parse_args()
    load = concurrent_readers(args.readers)
    print("## Concurrent readers on `python app.py --study` (loopback, 2 CPU cores)")
    print("| readers | login p50 / max (s) | case requests | errors | p50 (s) | p95 (s) | wall (s) | ratings stored / expected "
          "| duplicates | integrity |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {load['readers']} | {load['login_p50_s']:.2f} / {load['login_max_s']:.2f} | {load['requests']} | {load['errors']} | "
          f"{load['p50_s']:.2f} | {load['p95_s']:.2f} | "
          f"{load['wall_s']:.1f} | {load['stored']} / {load['expected']} | {load['duplicates']} | {load['integrity']} |")
    for error in load["first_errors"]:
        print(f"error: {error}")
    print("\n## kill -9 of the server while readers submit (0.5–3 s after all logged in)")
    print("| round | acknowledged so far | stored | lost | duplicated | gaps | wrong resumes | integrity |")
    print("|---|---|---|---|---|---|---|---|")
    for r in kill_rounds(args.kill_rounds, args.kill_readers):
        print(f"| {r['round']} | {r['acknowledged']} | {r['stored']} | {r['lost']} | {r['duplicated']} | {r['gaps']} | "
              f"{r['wrong_resume']} | {r['integrity']} |")


if __name__ == "__main__":
    main()
