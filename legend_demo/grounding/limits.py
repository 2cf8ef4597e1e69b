"""Limits that protect the shared queue, checked before any work is done.

The one progression-text limit (MAX_TEXT_CHARS, check_text) lives in legend_demo/core/limits.py, below every layer;
here: the grounding request as a whole, and how many candidate points reach the merge step.
"""
from __future__ import annotations

from ..core.limits import MAX_TEXT_CHARS, check_text  # noqa: F401 - the text limit, for grounding's callers
from .registry import grounder_module

MAX_POINTS = 64  # distinct candidate points a grounder may hand to the merge step


def check_request(text: object, grounder: str = "rules") -> str:
    """Everything about a grounding request that can be refused before the image is read: the text limit, the
    grounder's name (registry.py), and whether it can run (for "vlm": weights installed). Returns the text."""
    check_text(text)
    grounder_module(grounder).require()
    return text  # type: ignore[return-value]
