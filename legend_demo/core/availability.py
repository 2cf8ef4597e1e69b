"""What a registry (engines/registry.py, grounding/registry.py) says about one component it lists."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Availability:
    """A component's name, its label for people, whether it can run here, and one line on why not (or what it uses)."""

    name: str
    label: str
    available: bool
    reason: str  # one line: why it can't run here, or what it will use
