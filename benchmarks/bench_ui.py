"""Page benchmark: seconds from a Generate click to the SYNTHETIC follow-up on screen, beside the engine's own time.

    python benchmarks/bench_ui.py [--clicks 5] [--engine NAME] [--film PATH] [--text TEXT]

Runs `python app.py` on the default engine (the shipped embedded model unless --engine says otherwise) and drives
the page in Debian's chromium (playwright, as the browser tests do) at 1366×768: the real film RG1_UNCI.dcm
(pydicom-data) is uploaded, its points found, then Generate is clicked once (the first click, reported on its own:
it may wait for the model to finish loading) and `--clicks` more times, each with the next seed so every click
draws a new film. Per click:
- click → visible: from the click (performance.now() in the page) to the follow-up drawn on the results viewer's
  canvas (the pane's data-drawn attribute, set by viewer.js after the film is decoded and drawn);
- engine.generate: the engine's own time for that click, measured in the server around `Engine.generate`
  (the status line's "model … s");
- ratio = click → visible / engine.generate (goal ≤ 1.3).
Medians over the clicks after the first. Then the tabs made on demand are timed once: opening Maps and Downloads
until their pictures / files are shown.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from app_harness import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

TEXT = "new right lower lobe consolidation"
GOAL = 1.3
WATCH = """() => { const pane = document.querySelector('#result-viewer .fv-b');
    window.__drawnAt = null; window.__valueAt = null; delete pane.dataset.drawn;
    new MutationObserver((_, obs) => { window.__valueAt = performance.now(); obs.disconnect(); })
      .observe(document.querySelector('#result-viewer .fv-pair'), {childList: true});
    new MutationObserver((_, obs) => { if (pane.dataset.drawn) { window.__drawnAt = performance.now(); obs.disconnect(); } })
      .observe(pane, {attributes: true, attributeFilter: ['data-drawn']});
    window.__clickAt = performance.now(); document.querySelector('#generate').click(); }"""
MODEL_SECONDS = re.compile(r"([\d.]+) s \(model ([\d.]+) s\)")


def set_seed(page, seed: int) -> None:
    """The Settings tab's seed box (Generate reads it)."""
    page.get_by_role("tab", name="Settings").click()
    field = page.get_by_label("Seed", exact=True)
    field.fill(str(seed))
    field.press("Tab")


def one_click(page, seed: int, timeout_ms: int) -> tuple[float, float, float, float]:
    """(click → visible, engine.generate, server handler, click → result in the page) in seconds for one Generate
    click with `seed`."""
    set_seed(page, seed)
    page.wait_for_timeout(300)
    page.evaluate(WATCH)
    page.wait_for_function("() => window.__drawnAt !== null || "
                           "document.querySelector('#status').innerText.includes('Not generated')",
                           timeout=timeout_ms, polling=20)
    if page.evaluate("() => window.__drawnAt === null"):
        raise RuntimeError(f"Generate was refused: {page.locator('#status').inner_text()}")
    visible, arrived = page.evaluate("() => [(window.__drawnAt - window.__clickAt) / 1000, "
                                     "(window.__valueAt - window.__clickAt) / 1000]")
    page.locator("#status").get_by_text(f"seed {seed} ·").wait_for(timeout=timeout_ms)
    match = MODEL_SECONDS.search(page.locator("#status").inner_text())
    if match is None:
        raise RuntimeError(f"no timing in the status line: {page.locator('#status').inner_text()!r}")
    page.wait_for_timeout(1500)  # the open tab (Settings) needs nothing; let the page settle before the next click
    return visible, float(match[2]), float(match[1]), arrived


def tab_seconds(page, name: str, ready: str, timeout_ms: int) -> float:
    start = time.perf_counter()
    page.get_by_role("tab", name=name).click()
    page.wait_for_function(ready, timeout=timeout_ms, polling=20)
    return time.perf_counter() - start


def run(url: str, film: str, text: str, clicks: int, timeout_ms: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#generate").wait_for(timeout=timeout_ms)
        page.locator("#upload input[type=file]").set_input_files(film)
        page.locator("#point-editor .lv-stage").wait_for(timeout=timeout_ms)
        page.locator("#text textarea").fill(text)
        page.locator("#find").click()
        page.locator("#point-editor .pe-dot").first.wait_for(timeout=timeout_ms)
        page.wait_for_timeout(1000)
        rows = [one_click(page, seed, timeout_ms) for seed in range(clicks + 1)]
        engine = re.search(r"Engine (\S+)", page.locator("#status").inner_text())
        maps = tab_seconds(page, "Maps", "() => !!document.querySelector('#difference img')", timeout_ms)
        files = tab_seconds(page, "Downloads", "() => document.querySelectorAll('#downloads a').length >= 4", timeout_ms)
        browser.close()
    return {"rows": rows, "engine": engine[1] if engine else "?", "maps": maps, "downloads": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5, help="timed clicks after the first (default 5)")
    parser.add_argument("--engine", help="engine (default: what `python app.py` uses here)")
    parser.add_argument("--film", help="prior film (default: pydicom-data RG1_UNCI.dcm, a real PA chest CR)")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one step")
    args = parser.parse_args()
    from pydicom.data import get_testdata_file

    from legend_demo.engines.registry import default_engine_name

    os.environ.pop("LEGEND_ENABLE_TEST_ENGINE", None)
    engine = args.engine or default_engine_name() or "embedded"
    film = args.film or get_testdata_file("RG1_UNCI.dcm")
    env = {"LEGEND_ENABLE_TEST_ENGINE": "1" if engine == "tiny-random" else "0",
           "GRADIO_TEMP_DIR": os.environ.get("GRADIO_TEMP_DIR", "/tmp/gradio-bench-ui")}
    with running_app(("--engine", engine), env=env) as url:
        result = run(url, film, args.text, args.clicks, int(args.timeout * 1000))
    first, rest = result["rows"][0], result["rows"][1:]
    visible, model, server, arrived = (statistics.median(r[k] for r in rest) for k in range(4))
    ratios = [r[0] / r[1] for r in rest]
    print(f"engine {result['engine']} · film {Path(film).name} · {len(rest)} clicks after the first · Chromium 1366×768")
    print(f"{'measure':<34} | {'first click':>11} | {'median':>8}")
    print("-" * 60)
    for name, a, b in (("click → follow-up visible (s)", first[0], visible),
                       ("  of which: result in the page (s)", first[3], arrived),
                       ("engine.generate, same click (s)", first[1], model),
                       ("server handler (s)", first[2], server)):
        print(f"{name:<34} | {a:>11.2f} | {b:>8.2f}")
    ratio = statistics.median(ratios)
    print(f"{'ratio visible / engine':<34} | {first[0] / first[1]:>11.2f} | {ratio:>8.2f}   goal ≤ {GOAL}: "
          f"{'PASS' if ratio <= GOAL else 'FAIL'}")
    print(f"per click (visible / engine, s): " + ", ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in rest))
    print(f"made on demand: Maps tab → pictures {result['maps']:.2f} s · Downloads tab → files {result['downloads']:.2f} s")


if __name__ == "__main__":
    main()
