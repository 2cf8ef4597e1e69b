"""Shared fixtures: tiny random FLUX models built in code (no downloads), and one headless browser per session."""
import os

import pytest
import torch

os.environ.setdefault("LEGEND_ENABLE_TEST_ENGINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def tiny_engine():
    from legend_demo.engines.tiny import load

    return load(num_layers=2, num_single_layers=3, seed=0, default_steps=6)


# One playwright-driven Debian chromium for the whole session (two sync_playwright instances cannot coexist).
from app_harness import browser  # noqa: E402,F401
