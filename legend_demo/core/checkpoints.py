"""Where weights live: the `checkpoints/` layout, overridable by settings (legend_demo/core/settings.py; see
checkpoints/README.md). This is the one checkpoint resolver: engines, grounders and the app all call it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import settings

REPO_ROOT = Path(__file__).resolve().parents[2]

# name → (folder under the checkpoints root, environment variable that overrides it)
LAYOUT = {
    "flux": ("flux1-dev", "LEGEND_FLUX_PATH"),
    "stage1_lora": ("legend-stage1-lora", "LEGEND_LORA_PATH"),
    "stage2_gbca": ("legend-stage2-gbca/gbca_strength.safetensors", "LEGEND_GBCA_PATH"),
    "qwen": ("qwen2.5-vl-7b-instruct", "LEGEND_QWEN_PATH"),
    "emu3": ("emu3-gen", "LEGEND_EMU3_PATH"),
    "ar_lora": ("legend-ar-lora", "LEGEND_AR_LORA_PATH"),
    "ar_gbca": ("legend-ar-gbca/gbca_strength.safetensors", "LEGEND_AR_GBCA_PATH"),
    "xrv_densenet": ("xrv-densenet121-res224-all", "LEGEND_XRV_PATH"),
    "clip": ("biomedclip", "LEGEND_CLIP_PATH"),
    "inception": ("inception-v3", "LEGEND_INCEPTION_PATH"),
}


def checkpoints_root() -> Path:
    return settings.get("LEGEND_CHECKPOINTS") or REPO_ROOT / "checkpoints"


def checkpoint_path(name: str) -> str | None:
    """The configured path (or hub id, when given by its setting) for `name`, or None when nothing is there."""
    return _configured(name) or _present(default_location(name))


def default_location(name: str) -> Path:
    """<checkpoints root>/<folder> for `name` (whether or not anything is there)."""
    if name not in LAYOUT:
        raise ValueError(f"unknown checkpoint {name!r}; known: {', '.join(LAYOUT)}")
    return checkpoints_root() / LAYOUT[name][0]


def _configured(name: str) -> str | None:
    default_location(name)  # validates the name
    return settings.get(LAYOUT[name][1])


def _present(path: Path) -> str | None:
    return str(path) if path.exists() else None


def public_name(source: str) -> str:
    """How a checkpoint is named in reports and on the page: repo-relative for the project's own files, the last
    path component for any other local path (server paths never leave the server), a hub id unchanged."""
    path = Path(source)
    if not path.exists():
        return str(source)
    resolved = path.resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return resolved.name


@dataclass(frozen=True)
class Fingerprint:
    """How a checkpoint is identified in provenance: a sha256 of small files, or of a folder's configs.

    `source` is the public name (public_name), never an absolute server path."""

    source: str
    sha256: str | None
    scope: str  # "file", "configs" (large folders: every *.json plus weight file names and sizes), "hub-id"

    def to_dict(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "scope": self.scope}


def fingerprint(source: str | None) -> Fingerprint | None:
    if source is None:
        return None
    path = Path(source)
    if path.is_file():
        return Fingerprint(public_name(source), _sha256_file(path), "file")
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(path.rglob("*")):
            if item.is_file():
                rel = item.relative_to(path).as_posix()
                digest.update(f"{rel}:{item.stat().st_size}\n".encode())
                if item.suffix == ".json":
                    digest.update(item.read_bytes())
        return Fingerprint(public_name(source), digest.hexdigest(), "configs")
    return Fingerprint(source, None, "hub-id")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
