"""Turn every failure inside a callback into a gr.Error with a clear message — never a traceback."""
from __future__ import annotations

import functools
import gc
import logging
import sys
from typing import Callable, TypeVar

import gradio as gr

from ..engines.base import GenerationCancelled
from ..core.errors import EngineUnavailableError, GenerationError, ImageInputError
from ..grounding.orientation import LateralViewError

F = TypeVar("F", bound=Callable)
log = logging.getLogger("legend_demo.ui")


def user_message(exc: BaseException) -> str:
    """One clinician-readable line for an exception."""
    if isinstance(exc, GenerationCancelled):
        return "Generation cancelled."
    if isinstance(exc, ImageInputError):
        return f"Image problem: {exc}"
    if isinstance(exc, LateralViewError):
        return f"Not a frontal chest film: {exc}"
    if isinstance(exc, EngineUnavailableError):
        return f"No model available: {exc}"
    if _is_out_of_memory(exc):
        release_gpu_memory()
        return "The GPU ran out of memory; memory was released. Try fewer samples or steps, or wait for other jobs."
    if isinstance(exc, GenerationError):
        return f"Generation failed: {exc}"
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return f"Invalid input: {exc}"
    return f"Unexpected {type(exc).__name__}: {exc}. The app keeps running; please report this if it repeats."


def friendly(fn: F) -> F:
    """Decorator: re-raise any exception from `fn` as gr.Error(user_message(exc)). A user's mistake (bad input, a
    missing engine, a cancel) logs one line; its traceback only at DEBUG level. Unexpected errors log a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            _log_refusal(fn.__name__, str(exc.message))
            exc.print_exception = False  # Gradio would print a full traceback for a user's mistake
            raise
        except Exception as exc:  # noqa: BLE001 - the whole point is to catch everything
            message = user_message(exc)
            if isinstance(exc, (ValueError, GenerationCancelled, EngineUnavailableError, GenerationError)):
                _log_refusal(fn.__name__, message)
            else:
                log.exception("callback %s failed", fn.__name__)
            raise gr.Error(message, print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def _log_refusal(callback: str, message: str) -> None:
    log.info("%s refused: %s", callback, message)
    log.debug("%s refused", callback, exc_info=True)


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


def release_gpu_memory() -> None:
    """Drop cached engines and CUDA's cache after an out-of-memory error so the app keeps serving."""
    from ..engines import registry

    registry.clear_cache()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
