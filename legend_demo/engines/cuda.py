"""GPU memory for the engines that run on CUDA: refuse to load without room, give memory back after an OOM."""
from __future__ import annotations

from ..core.errors import EngineUnavailableError


def require_free_vram(needed_gib: float, what: str) -> None:
    """EngineUnavailableError with the numbers when the GPU has less than `needed_gib` free for `what`."""
    import torch

    free, total = torch.cuda.mem_get_info()
    if free < needed_gib * 2**30:
        raise EngineUnavailableError(
            f"the GPU has {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB; {what} needs about "
            f"{needed_gib:.0f} GiB — close other GPU jobs or use nf4"
        )


def release() -> None:
    """Hand cached GPU memory back (after an out-of-memory error); nothing without CUDA."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
