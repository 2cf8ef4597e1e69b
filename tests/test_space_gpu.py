"""The Space's GPU reservation: ZeroGPU's dynamic duration follows the click (engine, steps, samples, film), stays
within its bounds, and reaches `spaces.GPU` as a function of the call's own arguments."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import numpy as np

from legend_demo.engines.base import GenerationRequest
from legend_demo.core.image_io import LoadedImage
from legend_demo.ui import gpu
from legend_demo.ui.generation import GenerateClick


def film(width: int, height: int) -> LoadedImage:
    """A film that says it is `width` × `height` (the reservation reads only its size; the pixels are a stand-in)."""
    return LoadedImage(array=np.zeros((4, 4), np.float32), original_size=(width, height), source_format="png",
                       bit_depth=16)


FILM = film(2048, 2500)


def params(image: LoadedImage = FILM, steps: int | None = None, **kwargs) -> GenerateClick:
    kwargs.setdefault("engine", "legend-diffusion")
    request = GenerationRequest(image=image, progression_text="new right lower lobe consolidation", points=[],
                                steps=steps)
    return GenerateClick(request, **kwargs)


def test_reservation_grows_with_steps_samples_and_the_gbca_off_twin():
    base = gpu.generation_seconds(params(num_samples=2))
    assert gpu.generation_seconds(params(num_samples=2, steps=50)) > base
    assert gpu.generation_seconds(params(num_samples=4)) > base
    assert gpu.generation_seconds(params(num_samples=2, compare_off=True)) > base


def test_default_steps_are_the_engines_and_the_ar_engine_ignores_steps():
    assert gpu.generation_seconds(params(num_samples=3)) == gpu.generation_seconds(params(num_samples=3, steps=28))
    ar = params(engine="legend-ar", num_samples=2)
    assert gpu.generation_seconds(ar) == gpu.generation_seconds(params(engine="legend-ar", num_samples=2, steps=90))


def test_a_larger_film_asks_for_more_and_the_bounds_hold():
    small, huge = film(512, 512), film(7000, 7000)
    many = dict(num_samples=8, compare_off=True, steps=200)
    assert gpu.generation_seconds(params(huge, **many)) >= gpu.generation_seconds(params(small, **many))
    assert gpu.generation_seconds(params(huge, **many)) == gpu.MAX_SECONDS
    assert gpu.generation_seconds(params(small, engine="embedded", steps=1)) == gpu.MIN_SECONDS


def test_an_unknown_or_unresolvable_engine_still_gets_a_reservation(monkeypatch):
    assert gpu.MIN_SECONDS <= gpu.generation_seconds(params(engine="something-new")) <= gpu.MAX_SECONDS
    import legend_demo.engines.registry as registry

    def broken():
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(registry, "default_engine_name", broken)
    assert gpu.MIN_SECONDS <= gpu.generation_seconds(params(engine=None)) <= gpu.MAX_SECONDS


def test_spaces_gets_the_duration_function_and_it_reads_the_calls_arguments(monkeypatch):
    seen = {}

    class FakeSpaces:
        @staticmethod
        def GPU(duration):  # noqa: N802 — the spaces package's name
            seen["duration"] = duration
            return lambda fn: fn

    monkeypatch.setattr(gpu, "_spaces", FakeSpaces)

    @gpu.gpu_task(duration=gpu.generation_seconds)
    def task(click, report=None, cancel=None):
        return "ran"

    assert task(params()) == "ran"
    assert seen["duration"] is gpu.generation_seconds
    # ZeroGPU calls the duration with the task's own arguments, positional and keyword alike
    assert seen["duration"](params(), None, cancel=None) == gpu.generation_seconds(params())


def test_without_spaces_the_decorator_is_a_no_op(monkeypatch):
    monkeypatch.setattr(gpu, "_spaces", None)

    def task():
        return 1

    assert gpu.gpu_task(30)(task) is task



@pytest.mark.slow
@pytest.mark.parametrize("zerogpu", [False, True])
def test_make_space_writes_the_repository_and_for_zerogpu_a_supported_torch_and_python(tmp_path, zerogpu):
    repo = Path(__file__).resolve().parents[1]
    space = tmp_path / "space"
    command = ["bash", str(repo / "scripts" / "make_space.sh"), str(space)] + (["--zerogpu"] if zerogpu else [])
    subprocess.run(command, check=True, capture_output=True, cwd=repo)
    committed = subprocess.run(["git", "show", "HEAD:requirements.txt"], check=True, capture_output=True, text=True,
                               cwd=repo).stdout.splitlines()
    written = (space / "requirements.txt").read_text().splitlines()
    front = (space / "README.md").read_text().split("---")[1]
    assert (space / "app.py").is_file() and any(line.startswith("bitsandbytes") for line in written)
    changed = [(a, b) for a, b in zip(committed, written) if a != b]
    if zerogpu:
        assert [b.split()[0] for _, b in changed] == ["torch==2.11.0"] and 'python_version: "3.12"' in front
    else:
        assert changed == [] and 'python_version: "3.11"' in front
    assert subprocess.run(["bash", str(repo / "scripts" / "make_space.sh"), str(space)], capture_output=True,
                          cwd=repo).returncode == 2  # never writes into a non-empty folder
