"""The project's user-facing error types (one per kind of bad input)."""


class ImageInputError(ValueError):
    """An input image that cannot be used: empty, corrupt, not a radiograph, too small or too large.

    The message is written for a clinician: it says what is wrong and what to do about it.
    """


class EngineUnavailableError(RuntimeError):
    """A generation engine that cannot run here (missing weights, missing GPU, missing package)."""


class GenerationError(RuntimeError):
    """A generation request that failed for a reason the user can act on (e.g. out of GPU memory)."""
