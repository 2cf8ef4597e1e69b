"""The project's user-facing error types (one per kind of bad input)."""


class ImageInputError(ValueError):
    """An input image that cannot be used: empty, corrupt, not a radiograph, too small or too large.

    The message is written for a clinician: it says what is wrong and what to do about it.
    """


class EngineUnavailableError(RuntimeError):
    """A generation engine that cannot run here (missing weights, missing GPU, missing package)."""


class GenerationError(RuntimeError):
    """A generation request that failed for a reason the user can act on (e.g. out of GPU memory)."""


class GenerationCancelled(RuntimeError):
    """Raised inside a generation when the caller's cancel event is set."""


def raise_if_cancelled(cancel, where: str) -> None:
    """The one cancel hook of every engine: GenerationCancelled("cancelled <where>") once `cancel` (an Event) is set."""
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled(f"cancelled {where}")
