"""`gpu_task(duration)`: Hugging Face ZeroGPU's `spaces.GPU` when the package is installed, else a no-op.

Off ZeroGPU `spaces.GPU` already returns the function unchanged, so the Space and local runs share one path.
"""
from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

try:  # `spaces` must be imported before torch on ZeroGPU; app.py imports it first, this only reuses it.
    import spaces as _spaces
except ImportError:  # pragma: no cover - exercised only where the package is absent
    _spaces = None


def gpu_task(duration: int) -> Callable[[F], F]:
    """Decorator: ask ZeroGPU for a GPU for about `duration` seconds per call (no-op elsewhere)."""

    def wrap(fn: F) -> F:
        if _spaces is None:
            return fn
        return _spaces.GPU(duration=duration)(fn)

    return wrap
