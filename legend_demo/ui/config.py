"""App settings for one process: checkpoints root, engine, upload limits — CLI flags, else legend_demo.core.settings.

`AppConfig.apply()` hands the flags to legend_demo.core.settings as process overrides, so every resolver (engines,
grounders, the app) sees the same checkpoints root and engine; nothing is written into os.environ.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..core import settings
from ..core.checkpoints import REPO_ROOT, checkpoint_path, default_location

UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")


@dataclass(frozen=True)
class AppConfig:
    """Resolved settings for one app process."""

    checkpoints_root: Path = REPO_ROOT / "checkpoints"
    engine: str | None = None  # None: the registry's default (first available)
    max_upload_mb: float = float(settings.SETTINGS["LEGEND_MAX_UPLOAD_MB"].default)
    max_pixels: int = int(settings.SETTINGS["LEGEND_MAX_PIXELS"].default)

    @classmethod
    def from_env(cls, **flags) -> "AppConfig":
        """LEGEND_CHECKPOINTS, LEGEND_ENGINE, LEGEND_MAX_UPLOAD_MB, LEGEND_MAX_PIXELS; flags (not None) win."""
        config = cls(
            checkpoints_root=settings.get("LEGEND_CHECKPOINTS") or REPO_ROOT / "checkpoints",
            engine=settings.get("LEGEND_ENGINE"),
            max_upload_mb=settings.get("LEGEND_MAX_UPLOAD_MB"),
            max_pixels=settings.get("LEGEND_MAX_PIXELS"),
        )
        flags = {k: v for k, v in flags.items() if v is not None}
        if "checkpoints_root" in flags:
            flags["checkpoints_root"] = Path(flags["checkpoints_root"])
        return replace(config, **flags)

    def apply(self) -> None:
        """Make this process resolve checkpoints under `checkpoints_root` and default to `engine` (overrides)."""
        settings.override(LEGEND_CHECKPOINTS=str(self.checkpoints_root), LEGEND_ENGINE=self.engine)

    def checkpoint_dir(self, name: str) -> Path:
        """Where checkpoint `name` is looked for (the one resolver, legend_demo.core.checkpoints)."""
        return Path(checkpoint_path(name) or default_location(name))

    def has_checkpoint(self, name: str) -> bool:
        path = self.checkpoint_dir(name)
        return path.is_file() or (path.is_dir() and any(path.iterdir()))
