"""Which grounders exist, which can run here (with a one-line reason when not), and which module runs each —
like engines/registry.py. The page's choices, the `/ground` API, both CLIs and the request checks read this list.

A grounder module has LABEL, `availability() -> (bool, reason)` (can it run on this server: the page lists it),
`require()` (refuse a request at once, before the image is read: e.g. no weights installed) and
`ground_picture(picture, text, film) -> GroundingResult` on a picture in standard display.
"""
from __future__ import annotations

import importlib

from ..core.availability import Availability

DEFAULT_GROUNDER = "rules"
_MODULES = {  # name → module, in the order the page lists them
    "rules": "legend_demo.grounding.rules_grounder",
    "vlm": "legend_demo.grounding.vlm",
}
GROUNDERS = tuple(_MODULES)


GrounderInfo = Availability  # name, label, available, reason


def check_grounder(name: object) -> str:
    """The name itself, or ValueError when no grounder has it."""
    if name not in _MODULES:
        raise ValueError(f"grounder must be one of {GROUNDERS}, got {name!r}")
    return name  # type: ignore[return-value]


def grounder_module(name: str):
    """The module that runs grounder `name` (imported on first use)."""
    return importlib.import_module(_MODULES[check_grounder(name)])


def grounder_info(name: str) -> GrounderInfo:
    module = grounder_module(name)
    ok, reason = module.availability()
    return GrounderInfo(name, module.LABEL, ok, reason)


def available_grounders() -> list[GrounderInfo]:
    """Every grounder with whether it can run on this server, and why not."""
    return [grounder_info(name) for name in GROUNDERS]
