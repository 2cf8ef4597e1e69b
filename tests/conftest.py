"""Shared fixtures: tiny random FLUX and Emu3 engines built in code (no downloads), one headless browser per session,
and the garbage-collector settings that keep the fast tier fast."""
import gc
import os

gc.disable()  # while the test modules import torch, transformers, diffusers and gradio (re-enabled after collection)

import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("LEGEND_ENABLE_TEST_ENGINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread: the test models are tiny, and on a busy 2-core machine two OpenMP threads per process spin
# against each other (the embedded model's 2-step follow-up: 12.4 s with two threads, 0.38 s with one, load 6.5).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_engine():
    from legend_demo.engines.tiny import load

    return load(num_layers=2, num_single_layers=3, seed=0, default_steps=6)


@pytest.fixture(scope="session")
def tiny_ar_engine():
    """LeGend AR on a tiny random Emu3 (8×8 token grid, 4 decoder layers, GBCA on 1–2)."""
    from legend_demo.ar.backbone import ARBackbone
    from legend_demo.ar.sampling import SamplingOptions
    from legend_demo.ar.tiny import TINY_AR_SIDE, tiny_emu3
    from legend_demo.engines.ar import LeGendAREngine

    model, tokenizer = tiny_emu3(seed=4)
    return LeGendAREngine(ARBackbone.from_model(model, tokenizer), checkpoint="tiny random Emu3",
                          model_side=TINY_AR_SIDE, sampling=SamplingOptions(top_k=16))


# One playwright-driven Debian chromium for the whole session (two sync_playwright instances cannot coexist).
from app_harness import browser  # noqa: E402,F401


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        gc.enable()  # the pytest-xdist controller collects nothing: its collector stays on


def pytest_collection_finish(session):
    """Everything imported so far (torch, transformers, diffusers, gradio: millions of objects) lives for the whole
    run: move it out of the garbage collector's reach, so each full collection — the automatic ones during the tests
    and pytest's five at the end of the session — walks only what the tests create (documented use of gc.freeze).
    Collection ran with the collector off: imports make almost no cyclic garbage, and its full passes over the
    growing heap were seconds of the fast tier."""
    gc.freeze()
    gc.enable()
