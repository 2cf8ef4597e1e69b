"""App settings: checkpoints root, engine, upload limits — from CLI flags, else environment, else defaults.

The checkpoint layout itself (folders, per-model env vars LEGEND_FLUX_PATH, LEGEND_LORA_PATH, ...) is
`legend_demo.checkpoints.LAYOUT`; this module only decides the root and publishes it as LEGEND_CHECKPOINTS
so engines and grounders read the same place (see checkpoints/README.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..checkpoints import LAYOUT, REPO_ROOT
from ..image_io import MAX_PIXELS

MAX_UPLOAD_MB = 50.0
UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")


@dataclass(frozen=True)
class AppConfig:
    """Resolved settings for one app process."""

    checkpoints_root: Path = REPO_ROOT / "checkpoints"
    engine: str | None = None  # None: the registry's default (first available)
    max_upload_mb: float = MAX_UPLOAD_MB
    max_pixels: int = MAX_PIXELS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags) -> "AppConfig":
        """Read LEGEND_CHECKPOINTS, LEGEND_ENGINE, LEGEND_MAX_UPLOAD_MB, LEGEND_MAX_PIXELS; flags (not None) win."""
        env = os.environ if env is None else env
        config = cls(
            checkpoints_root=Path(env.get("LEGEND_CHECKPOINTS") or REPO_ROOT / "checkpoints"),
            engine=env.get("LEGEND_ENGINE") or None,
            max_upload_mb=_positive(env, "LEGEND_MAX_UPLOAD_MB", MAX_UPLOAD_MB),
            max_pixels=int(_positive(env, "LEGEND_MAX_PIXELS", MAX_PIXELS)),
        )
        flags = {k: v for k, v in flags.items() if v is not None}
        if "checkpoints_root" in flags:
            flags["checkpoints_root"] = Path(flags["checkpoints_root"])
        return replace(config, **flags)

    def export_env(self, env: dict[str, str] | None = None) -> None:
        """Publish the root (and engine) so every loader resolves checkpoints the same way."""
        env = os.environ if env is None else env
        env["LEGEND_CHECKPOINTS"] = str(self.checkpoints_root)
        if self.engine:
            env["LEGEND_ENGINE"] = self.engine

    def checkpoint_dir(self, name: str, env: Mapping[str, str] | None = None) -> Path:
        """Where checkpoint `name` is looked for: its env var if set, else <root>/<folder>."""
        env = os.environ if env is None else env
        folder, var = LAYOUT[name]
        return Path(env[var]) if env.get(var) else self.checkpoints_root / folder

    def has_checkpoint(self, name: str) -> bool:
        path = self.checkpoint_dir(name)
        return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value
