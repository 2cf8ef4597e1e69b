"""Console logging for the CLI and the app: one logger per package (legend_demo.training, .synth, .evaluation,
.ui, .study, ...), configured once here, at LEGEND_LOG_LEVEL (INFO by default): one line per event on stderr."""
from __future__ import annotations

import logging

from . import settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str | None = None) -> None:
    """Send legend_demo.* records to stderr (once); the level from `level` or LEGEND_LOG_LEVEL."""
    root = logging.getLogger("legend_demo")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(level or settings.get("LEGEND_LOG_LEVEL"))
