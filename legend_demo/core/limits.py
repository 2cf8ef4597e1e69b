"""The one progression-text limit, checked before any work by every entry point (`/ground`, `/generate`, the CLI,
the VLM prompt, `GenerationRequest.validate`): import it from here."""
from __future__ import annotations

MAX_TEXT_CHARS = 2000  # a long report paragraph; the thesis descriptions are one or two sentences


def check_text(text: object) -> str:
    """The text itself, or ValueError when it is not a string or longer than MAX_TEXT_CHARS (O(1) for str)."""
    if not isinstance(text, str):
        raise ValueError(f"the progression text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the progression description is {len(text)} characters; the limit is {MAX_TEXT_CHARS} "
                         "(describe the change in a few sentences)")
    return text
