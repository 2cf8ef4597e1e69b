"""A burst of simultaneous logins on a live `python app.py --study DB` (issue 24 §5): memory and page latency.

    python benchmarks/bench_study_logins.py [--logins 200]

N clients (distinct names and forwarded addresses from a trusted proxy on 127.0.0.1, so that no lockout answers
before a password is checked) post a login at the same moment. Reported: answers by status, the server's resident
memory before and at its peak during the burst (sampled every 10 ms from /proc), the login page's latency while
the burst is in flight (median and worst of GETs every 0.2 s), and the burst's wall time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from app_harness import free_port, wait_for_page  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_study(folder: Path) -> Path:
    from legend_demo.study.db import connect
    from legend_demo.study.demo import write_demo_study
    from legend_demo.study.manifest import read_manifest
    from legend_demo.study.readers import add_reader
    from legend_demo.study.studies import create_study

    db = folder / "study.db"
    create_study(db, read_manifest(write_demo_study(folder / "demo")), seed=7, admin_password="admin-password")
    conn = connect(db)
    add_reader(conn, "reader00", "reader00-password")
    conn.close()
    return db


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=200)
    args = parser.parse_args()
    db = make_study(Path(tempfile.mkdtemp(prefix="bench_logins_")))
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "LEGEND_STUDY_TRUSTED_PROXIES": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, "app.py", "--study", str(db), "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    http = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=args.logins + 10))

    def guess(i: int) -> int:
        return http.post(url + "login", data={"username": f"user{i}", "password": "guess"},
                         headers={"X-Forwarded-For": f"198.18.{i // 250}.{i % 250}"}).status_code

    try:
        wait_for_page(url + "login", proc=server)
        guess(10_000)  # warm-up: the first check makes the dummy hash for unknown names
        before, peak, done, page_times = rss_mb(server.pid), [0.0], threading.Event(), []

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(server.pid))
                time.sleep(0.01)

        def probe() -> None:
            while not done.is_set():
                start = time.perf_counter()
                httpx.get(url + "login", timeout=60)
                page_times.append(time.perf_counter() - start)
                time.sleep(0.2)

        helpers = [threading.Thread(target=watch), threading.Thread(target=probe)]
        for helper in helpers:
            helper.start()
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=args.logins) as pool:
                statuses = Counter(pool.map(guess, range(args.logins)))
        finally:
            done.set()
            for helper in helpers:
                helper.join()
        wall = time.perf_counter() - start
    finally:
        http.close()
        server.terminate()
        server.wait(timeout=30)
    print(f"{args.logins} simultaneous logins: answers {dict(statuses)}; burst {wall:.1f} s")
    print(f"server RSS {before:.0f} MB before, {peak[0]:.0f} MB at peak (+{peak[0] - before:.0f} MB)")
    print(f"login page during the burst: median {statistics.median(page_times):.2f} s, worst {max(page_times):.2f} s "
          f"({len(page_times)} loads)")


if __name__ == "__main__":
    main()
