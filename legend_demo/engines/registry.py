"""Which engines exist, which can run here (with a one-line reason when not), and loading them once."""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Callable

from ..core import settings
from ..core.availability import Availability
from ..core.errors import EngineUnavailableError
from .base import Engine


EngineInfo = Availability  # name, label, available, reason


@dataclass(frozen=True)
class _Spec:
    name: str
    module: str  # module with LABEL, `availability() -> (bool, str)` and `load(**options) -> Engine`


_SPECS = (
    _Spec("legend-diffusion", "legend_demo.engines.flux"),
    _Spec("legend-ar", "legend_demo.engines.ar"),
    _Spec("embedded", "legend_demo.engines.embedded"),
    _Spec("tiny-random", "legend_demo.engines.tiny"),
)

TEST_ENGINE_ENV = "LEGEND_ENABLE_TEST_ENGINE"  # "1" makes the test-only engines exist (CLI, API, UI alike)
_TEST_ENGINES = frozenset({"tiny-random"})

_cache: dict[tuple, Engine] = {}
_lock = threading.RLock()  # one engine import or load at a time: the app's background preload and the page's engine
#                            discovery import the same libraries, and a concurrent first import of transformers'
#                            lazy modules fails ("cannot import name 'CLIPImageProcessor'")


def _specs() -> tuple[_Spec, ...]:
    """The engines that exist in this process: test-only engines only when TEST_ENGINE_ENV is '1'."""
    if settings.get(TEST_ENGINE_ENV):
        return _SPECS
    return tuple(s for s in _SPECS if s.name not in _TEST_ENGINES)


def _spec(name: str) -> _Spec:
    if not isinstance(name, str):
        raise ValueError(f"engine name must be text, got {type(name).__name__} {name!r}")
    specs = _specs()
    for spec in specs:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(s.name for s in specs)}")


def _module(spec: _Spec):
    try:
        with _lock:
            return importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            return None
        raise


def engine_info(name: str) -> EngineInfo:
    spec = _spec(name)
    module = _module(spec)
    if module is None:
        return EngineInfo(spec.name, spec.name, False, "not built into this version")
    ok, reason = module.availability()
    return EngineInfo(spec.name, module.LABEL, ok, reason)


def available_engines() -> list[EngineInfo]:
    """Every engine that exists here with its availability; test-only engines only when TEST_ENGINE_ENV=1."""
    return [engine_info(s.name) for s in _specs()]


def default_engine_name() -> str | None:
    """LEGEND_ENGINE when set (app, API and CLI alike), else the first available engine: a configured full
    checkpoint, else the embedded model, else none."""
    configured = settings.get("LEGEND_ENGINE")
    if configured:
        return configured
    for info in available_engines():
        if info.available:
            return info.name
    return None


def load_engine(name: str | None = None, **options) -> Engine:
    """Load (once per name and options) and return an engine; EngineUnavailableError says why it can't run."""
    name = name or default_engine_name()
    if name is None:
        reasons = "; ".join(f"{i.name}: {i.reason}" for i in available_engines())
        raise EngineUnavailableError(f"no generation engine can run here ({reasons})")
    info = engine_info(name)
    if not info.available:
        raise EngineUnavailableError(f"engine {name!r} cannot run here: {info.reason}")
    key = (name, tuple(sorted(options.items())))
    with _lock:
        if key not in _cache:
            _cache[key] = _module(_spec(name)).load(**options)
        return _cache[key]


def clear_cache(release: Callable[[Engine], None] | None = None) -> None:
    """Forget loaded engines (after an out-of-memory error, for instance)."""
    with _lock:
        for engine in _cache.values():
            if release:
                release(engine)
        _cache.clear()
