"""Gradio user interfaces: the clinician-facing app (`create_demo`) and the reader study (`study_app`).

Imported lazily so `import legend_demo.ui` does not pull in gradio until a UI is built.
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_demo"]


def __getattr__(name: str) -> Any:
    if name == "create_demo":
        from .app_ui import create_demo

        return create_demo
    raise AttributeError(f"module 'legend_demo.ui' has no attribute {name!r}")
