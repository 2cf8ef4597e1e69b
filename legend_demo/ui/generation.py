"""One Generate click: K seeds with GBCA, optionally the same first seed with GBCA off, with progress and cancel.

Shared by the UI and the `/generate` API, so both run exactly the same path (also on a ZeroGPU Space).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Callable


from ..engines.base import Engine, GenerationRequest, GenerationResult
from ..engines.registry import load_engine
from ..core.errors import GenerationCancelled
from ..core.points import LesionPoint
from .gpu import generation_seconds, gpu_task

MAX_SAMPLES = 8
SAMPLE_NOISE_MIX = 0.25  # η used when K > 1: inversion is deterministic, so seeds only differ through fresh noise

Reporter = Callable[[float, str], None]  # (fraction done in [0, 1], description)
NO_POINTS = ("there are no lesion points, so the follow-up would be your film unchanged: place a point on the film "
             "or describe the change with its side and zone, then Generate")


class NoPointsError(ValueError):
    """A composite follow-up without lesion points would be the prior itself: refused before any work."""


@dataclass(frozen=True)
class GenerateClick:
    """One Generate click (the page's controls or the API's arguments): the GenerationRequest of its first sample,
    and what a click adds to it — K samples, the GBCA-off twin, the engine, how the points were made."""

    request: GenerationRequest  # seed = the first sample's; noise_mix 0 (η = SAMPLE_NOISE_MIX is used when K > 1)
    num_samples: int = 1
    compare_off: bool = False
    engine: str | None = None  # None: the default engine
    points_note: dict | None = None  # how the points were made: {"by": "grounder: rules" | "example" | ..., "found_for"}

    @property
    def noise_mix(self) -> float:
        """η of the samples: the request's own, else SAMPLE_NOISE_MIX when K > 1 (inversion is deterministic)."""
        if self.request.noise_mix or self.num_samples == 1:
            return self.request.noise_mix
        return SAMPLE_NOISE_MIX

    def check(self) -> None:
        """Refuse, before any model time, what cannot give a useful follow-up (never the prior handed back)."""
        if not (1 <= self.num_samples <= MAX_SAMPLES):
            raise ValueError(f"number of samples K={self.num_samples} must be between 1 and {MAX_SAMPLES}")
        if not self.request.points and self.request.output_mode == "composite":
            raise NoPointsError(NO_POINTS)

    def requests(self) -> list[GenerationRequest]:
        """K requests (seeds seed..seed+K-1), then the GBCA-off twin of the first when asked."""
        first = replace(self.request, noise_mix=self.noise_mix)
        requests = [replace(first, seed=first.seed + k) for k in range(self.num_samples)]
        if self.compare_off:
            requests.append(replace(first, bias_strength=0.0))
        return requests


@dataclass
class GenerationBundle:
    """Results of one click: samples[0] is the main follow-up; `off` is GBCA off with samples[0]'s seed."""

    samples: list[GenerationResult]
    off: GenerationResult | None = None
    seeds: list[int] = field(default_factory=list)

    @property
    def main(self) -> GenerationResult:
        return self.samples[0]


class CancelBoard:
    """Per-session cancel flags: the Cancel button sets the one for its session."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            event = self._events[session] = threading.Event()
            return event

    def cancel(self, session: str) -> bool:
        with self._lock:
            event = self._events.get(session)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, session: str) -> None:
        with self._lock:
            self._events.pop(session, None)


@gpu_task(duration=generation_seconds)  # ZeroGPU reservation from the click's engine, steps, K
def run_generation(click: GenerateClick, report: Reporter | None = None,
                   cancel: threading.Event | None = None) -> GenerationBundle:
    """Run every request of the click on the chosen engine; raises GenerationCancelled when `cancel` is set."""
    click.check()
    engine = load_engine(click.engine)
    requests = click.requests()  # validated by Engine.generate (the first one fails before any work)
    results = [_run_one(engine, req, k, len(requests), report, cancel) for k, req in enumerate(requests)]
    off = results.pop() if click.compare_off else None
    return GenerationBundle(samples=results, off=off, seeds=[r.seed for r in requests[: click.num_samples]])


def _run_one(engine: Engine, request: GenerationRequest, index: int, count: int,
             report: Reporter | None, cancel: threading.Event | None) -> GenerationResult:
    label = "GBCA off" if index == count - 1 and request.bias_strength == 0.0 and index > 0 else f"seed {request.seed}"

    def progress(phase: str, step: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("cancelled by the user")
        if report is not None:
            within = (0.5 if phase == "denoise" else 0.0) + 0.5 * step / max(total, 1)
            report((index + within) / count, f"{label} ({index + 1}/{count}) · {phase} step {step}/{total}")

    if cancel is not None and cancel.is_set():
        raise GenerationCancelled("cancelled by the user")
    return engine.generate(request, progress=progress, cancel=cancel)


def warm_up(engine: Engine, steps: int = 2) -> float:
    """One small follow-up (a flat 128² film, one point, `steps` steps) so the first real click does not pay the
    libraries' first-call costs (kernel set-up, the text encoder's first call); returns the seconds it took."""
    import time

    import numpy as np

    started = time.perf_counter()
    film = np.full((128, 128), 0.5, np.float32)
    request = GenerationRequest(image=film, progression_text="new right lower lobe consolidation",
                                points=[LesionPoint(40.0, 90.0, 5, "warm-up")], steps=steps, capture_layers=None)
    engine.generate(request)
    return time.perf_counter() - started
