"""App benchmark: seconds from `python app.py` to the first served page, and per Generate on the default engine.

    python benchmarks/bench_app.py [--clicks 3] [--test-engine]

A Generate click is timed through the `/generate` API (same code path as the button: upload check, grounding,
generation, downloads). Goals on a 2-core CPU: first page ≤ 20 s, Generate on the embedded default ≤ 15 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from app_harness import running_app  # noqa: E402

TEXT = "interval increase of right lower lobe consolidation"


def time_clicks(url: str, clicks: int) -> tuple[list[float], str]:
    """Seconds per /generate call and the engine that answered (or why none did)."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from legend_demo.ui.examples import example_files

    client = Client(url, verbose=False)
    image = handle_file(example_files()[0][0])
    times, engine = [], "?"
    for _ in range(clicks):
        start = time.perf_counter()
        try:
            _, report, _ = client.predict(image, TEXT, api_name="/generate")
        except AppError as exc:
            return times, f"no engine ({exc})"
        times.append(time.perf_counter() - start)
        engine = f"{report['engine']} ({report['checkpoint']})"
    return times, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--test-engine", action="store_true", help="enable and use the tiny-random test engine")
    args = parser.parse_args()
    env = {"LEGEND_ENABLE_TEST_ENGINE": "1" if args.test_engine else "0"}
    if not args.test_engine:
        os.environ.pop("LEGEND_ENABLE_TEST_ENGINE", None)
    from legend_demo.engines.registry import default_engine_name

    default = default_engine_name()  # what a plain `python app.py` would use here
    extra = ("--engine", "tiny-random" if args.test_engine else (default or "embedded"))
    start = time.perf_counter()
    with running_app(extra, env=env) as url:
        startup = time.perf_counter() - start
        times, engine = time_clicks(url, args.clicks)
    rows = [("python app.py → first page", f"{startup:.1f} s", "≤ 20 s")]
    if times:
        rows.append((f"Generate, first click ({engine})", f"{times[0]:.1f} s", "≤ 15 s"))
        if len(times) > 1:
            rows.append((f"Generate, median of next {len(times) - 1}", f"{statistics.median(times[1:]):.1f} s", "≤ 15 s"))
    else:
        rows.append(("Generate", engine, "≤ 15 s"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}} | {'seconds':>10} | goal")
    print("-" * (width + 22))
    for name, value, goal in rows:
        print(f"{name:<{width}} | {value:>10} | {goal}")


if __name__ == "__main__":
    main()
