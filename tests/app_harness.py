"""Reusable fixtures for app tests: a live app on a free local port, and a headless Debian chromium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_page(url: str, timeout_s: float = 120.0, proc: subprocess.Popen | None = None) -> float:
    """Poll until `url` answers 200; return the seconds waited. Fails early if `proc` dies."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"app exited with code {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@contextmanager
def running_app(extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                log_path: Path | None = None) -> Iterator[str]:
    """`python app.py` in a subprocess on a free port with the tiny test engine; yields its URL."""
    port = free_port()
    child_env = {**os.environ, "LEGEND_ENABLE_TEST_ENGINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    engine = () if "--engine" in extra_args else ("--engine", "tiny-random")  # not the shipped embedded model
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *engine, *extra_args],
                            cwd=REPO, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(log_path=log) as url:
        yield url


def chromium_missing_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium); CI installs it"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="session")
def browser():
    """A headless Debian chromium driven by playwright (never a downloaded browser)."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def example_png() -> str:
    from legend_demo.ui.examples import example_files

    return next(path for path, example in example_files() if example.path is None)  # a non-square drawing


def has_chromium() -> bool:
    return shutil.which(CHROMIUM) is not None
