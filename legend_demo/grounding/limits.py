"""Limits that protect the shared queue, checked before any work is done.

MAX_TEXT_CHARS is the one progression-text limit: `/ground`, `/generate`, the CLI `ground` and `generate`
commands, the VLM prompt and `GenerationRequest.validate` all use it (import it from here).
"""
from __future__ import annotations

MAX_TEXT_CHARS = 2000  # a long report paragraph; the thesis descriptions are one or two sentences
MAX_POINTS = 64  # distinct candidate points a grounder may hand to the merge step


def check_request(text: object, grounder: str = "rules") -> str:
    """Everything about a grounding request that can be refused before the image is read: the text limit, the
    grounder's name, and (for "vlm") whether weights are installed. Returns the text."""
    from . import GROUNDERS

    check_text(text)
    if grounder not in GROUNDERS:
        raise ValueError(f"grounder must be one of {GROUNDERS}, got {grounder!r}")
    if grounder == "vlm":
        from .vlm import require_vlm_weights

        require_vlm_weights()
    return text  # type: ignore[return-value]


def check_text(text: object) -> str:
    """The text itself, or ValueError when it is not a string or longer than MAX_TEXT_CHARS (O(1) for str)."""
    if not isinstance(text, str):
        raise ValueError(f"the progression text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the progression description is {len(text)} characters; the limit is {MAX_TEXT_CHARS} "
                         "(describe the change in a few sentences)")
    return text
