"""Concurrent clients sending films to a live `python app.py` (issue 26): the same file vs distinct files.

    python benchmarks/bench_uploads.py [--clients 1,2,4,8] [--engine tiny-random|embedded] [--steps 2]

For each N, N gradio_client clients call `/generate` at the same moment, each with its own progression text, all
with ONE film (same bytes, same name: Gradio stores them at one path) or with N byte-different copies of it.
Reported per row: successes out of N, the wall time of the whole batch (the queue runs one generation at a time)
against N × one warm call (median of 3, measured just before it in the same run; clients connect beforehand), the server's peak resident memory during
the batch (sampled every 20 ms from /proc), and uploads left in Gradio's cache afterwards (must be 0).
The film is pydicom-data's real PA chest CR (RG1_UNCI) at a quarter of its size, as an 8-bit PNG.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from app_harness import free_port, wait_for_page  # noqa: E402

TEXTS = ("new right lower lobe consolidation", "new left lower lobe consolidation", "new right upper lobe opacity",
         "new left upper lobe opacity", "new right pleural effusion", "new left pleural effusion",
         "new right middle lobe consolidation", "new lingular consolidation")


def write_films(folder: Path, count: int) -> list[Path]:
    """The real film as a PNG, and count − 1 byte-different copies (one pixel changed in a corner)."""
    import cv2
    import numpy as np
    from PIL import Image
    from pydicom.data import get_testdata_file

    from legend_demo.core.image_io import load_image

    array = load_image(get_testdata_file("RG1_UNCI.dcm")).array
    small = np.round(cv2.resize(array, (array.shape[1] // 4, array.shape[0] // 4), interpolation=cv2.INTER_AREA) * 255)
    paths = []
    for index in range(count):
        pixels = small.astype(np.uint8)
        pixels[0, 0] = (int(pixels[0, 0]) + index) % 256
        (folder / f"copy{index}").mkdir(parents=True, exist_ok=True)
        path = folder / f"copy{index}" / "prior_film.png"  # one name: only the bytes differ
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def call(client, film: Path, text: str, steps: int) -> bool:
    from gradio_client import handle_file

    try:
        client.predict(handle_file(str(film)), text, steps=steps, api_name="/generate")
        return True
    except Exception:  # noqa: BLE001 - a lost request is what is being counted
        return False


def warm_call(client, film: Path, steps: int, repeats: int = 3) -> float:
    """Median seconds of one call on an idle queue."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(client, film, TEXTS[0], steps)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def batch(clients: list, pid: int, films: list[Path], steps: int) -> tuple[int, float, float]:
    """(successes, wall seconds, peak RSS MB) of len(films) clients (made beforehand) calling at once."""
    peak, done = [rss_mb(pid)], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=len(films)) as pool:
            ok = list(pool.map(lambda i: call(clients[i], films[i], TEXTS[i % len(TEXTS)], steps), range(len(films))))
    finally:
        done.set()
        watcher.join()
    return sum(ok), time.perf_counter() - start, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--engine", default="tiny-random")
    parser.add_argument("--steps", type=int, default=2, help="generation steps (0: the engine's default)")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_uploads_"))
    cache = work / "gradio"
    films = write_films(work / "films", max(counts))
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(cache), "GRADIO_ANALYTICS_ENABLED": "False",
           "LEGEND_ENABLE_TEST_ENGINE": "1" if args.engine == "tiny-random" else os.environ.get("LEGEND_ENABLE_TEST_ENGINE", "0")}
    server = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--engine",
                               args.engine, "--no-preload"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        from gradio_client import Client

        wait_for_page(url, proc=server)
        clients = [Client(url, verbose=False) for _ in range(max(counts))]  # connected before any batch starts
        call(clients[0], films[0], TEXTS[0], args.steps)  # load the engine
        print(f"engine {args.engine}, steps {args.steps}, film {films[0].stat().st_size / 1e6:.2f} MB PNG; "
              f"server RSS after warm-up {rss_mb(server.pid):.0f} MB")
        print(f"{'N':>3} {'files':>9} {'ok':>5} {'batch s':>8} {'N×warm s':>9} {'ratio':>6} {'peak RSS MB':>12} {'left':>5}")
        for n in counts:
            for mode in ("same", "distinct"):
                warm = warm_call(clients[0], films[0], args.steps)
                chosen = [films[0]] * n if mode == "same" else films[:n]
                ok, seconds, peak = batch(clients[:n], server.pid, chosen, args.steps)
                left = sum(1 for p in cache.rglob("prior_film.png"))
                print(f"{n:>3} {mode:>9} {ok:>3}/{n:<1} {seconds:>8.2f} {n * warm:>9.2f} {seconds / (n * warm):>6.2f} "
                      f"{peak:>12.0f} {left:>5}")
        print(f"server peak RSS over the whole run (VmHWM): {rss_mb(server.pid, 'VmHWM'):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
