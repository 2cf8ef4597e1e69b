"""Study manifests (CSV, JSON or ICG-CXR-style pair folders): parsing and up-front validation of every file."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from ..core.errors import ImageInputError
from .images import read_gray

REAL_SOURCES = frozenset({"real", "real-followup", "real follow-up", "real_followup"})
CSV_COLUMNS = ("case_id", "prior", "text", "source", "path")
FOLDER_MANIFEST_NAMES = ("manifest.json", "manifest.csv")


class ManifestError(ValueError):
    """A manifest with problems; the message lists every one of them on a single line."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = list(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"manifest {where} has {count}: " + "; ".join(problems))


@dataclass(frozen=True)
class CandidateSpec:
    source: str
    path: str | None  # relative to the study root; None: to be generated
    is_real: bool


@dataclass(frozen=True)
class CaseSpec:
    key: str
    prior: str
    text: str
    candidates: tuple[CandidateSpec, ...]


@dataclass(frozen=True)
class Manifest:
    name: str
    root: Path  # the study folder: every file must lie inside it
    cases: tuple[CaseSpec, ...]
    origin: str  # the manifest file or folder, for messages


def is_real_source(source: str) -> bool:
    return source.strip().lower() in REAL_SOURCES


def read_manifest(path: str | Path) -> Manifest:
    """Parse a manifest file or pair folder (no file checks yet: see validate_manifest)."""
    path = Path(path)
    if path.is_dir():
        for name in FOLDER_MANIFEST_NAMES:
            if (path / name).is_file():
                return read_manifest(path / name)
        return _read_pair_folders(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise ValueError(f"manifest {str(path)!r} must be .json, .csv or a folder of pair folders (got {suffix or 'no suffix'!r})")


def _candidate(source: Any, rel_path: Any, real: Any = None) -> CandidateSpec:
    source = str(source or "").strip()
    rel = str(rel_path).strip() if rel_path not in (None, "") else None
    is_real = bool(real) if real is not None else is_real_source(source)
    return CandidateSpec(source=source, path=rel, is_real=is_real)


def _read_json(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(str(path), [f"not valid JSON ({exc})"]) from exc
    entries = data.get("cases") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ManifestError(str(path), ["expected a list of cases or an object with a 'cases' list"])
    cases, problems = [], []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            problems.append(f"case #{index}: expected an object, got {type(entry).__name__}")
            continue
        raw_candidates = entry.get("candidates") or []
        if not isinstance(raw_candidates, list) or not all(isinstance(c, dict) for c in raw_candidates):
            problems.append(f"case #{index}: 'candidates' must be a list of objects with 'source' and 'path'")
            continue
        candidates = tuple(_candidate(c.get("source"), c.get("path"), c.get("real")) for c in raw_candidates)
        key = str(entry.get("id", entry.get("case_id", "")) or "").strip()
        text = entry.get("text", entry.get("progression-description", ""))
        cases.append(CaseSpec(key or f"#{index}", str(entry.get("prior") or "").strip(), str(text or ""), candidates))
    if problems:
        raise ManifestError(str(path), problems)
    name = str(data.get("name") or path.stem) if isinstance(data, dict) else path.stem
    return Manifest(name, path.parent, tuple(cases), str(path))


def _read_csv(path: Path) -> Manifest:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(str(path), [f"missing column(s) {', '.join(missing)} (need {', '.join(CSV_COLUMNS)})"])
        rows = list(reader)
    grouped: dict[str, dict[str, Any]] = {}
    problems = []
    for line, row in enumerate(rows, start=2):
        key = (row["case_id"] or "").strip()
        if not key:
            problems.append(f"line {line}: empty case_id")
            continue
        case = grouped.setdefault(key, {"prior": (row["prior"] or "").strip(), "text": row["text"] or "", "candidates": []})
        if (row["prior"] or "").strip() != case["prior"] or (row["text"] or "") != case["text"]:
            problems.append(f"line {line}: case {key!r} repeats with a different prior or text")
        real = row.get("real")
        real = None if real in (None, "") else real.strip().lower() in ("1", "true", "yes")
        case["candidates"].append(_candidate(row["source"], row["path"], real))
    if problems:
        raise ManifestError(str(path), problems)
    cases = tuple(CaseSpec(k, v["prior"], v["text"], tuple(v["candidates"])) for k, v in grouped.items())
    return Manifest(path.stem, path.parent, cases, str(path))


def _first_existing(folder: Path, names: Iterable[str]) -> str | None:
    for name in names:
        if (folder / name).exists():
            return f"{folder.name}/{name}"
    return None


def _read_pair_folders(root: Path) -> Manifest:
    """ICG-CXR style: <id>/<id>.json (progression-description), <id>-ref[-reg].png, <id>-flu[-reg].png,
    plus optional extra candidates <id>-cand-<source>.png."""
    cases, problems = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        key = folder.name
        meta_path = folder / f"{key}.json"
        if not meta_path.is_file():
            problems.append(f"pair folder {key!r}: missing {key}.json")
            continue
        try:
            text = json.loads(meta_path.read_text(encoding="utf-8")).get("progression-description", "")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            problems.append(f"pair folder {key!r}: {key}.json is not a JSON object ({exc.__class__.__name__})")
            continue
        prior = _first_existing(folder, (f"{key}-ref.png", f"{key}-ref-reg.png"))
        real = _first_existing(folder, (f"{key}-flu.png", f"{key}-flu-reg.png"))
        if prior is None:
            problems.append(f"pair folder {key!r}: missing {key}-ref.png")
        candidates = [CandidateSpec("real", real, True)] if real else []
        for extra in sorted(folder.glob(f"{key}-cand-*.png")):
            source = extra.stem[len(f"{key}-cand-"):]
            candidates.append(CandidateSpec(source, f"{key}/{extra.name}", is_real_source(source)))
        cases.append(CaseSpec(key, prior or "", str(text or ""), tuple(candidates)))
    if problems:
        raise ManifestError(str(root), problems)
    if not cases:
        raise ManifestError(str(root), ["no pair folders (<id>/<id>.json, <id>-ref.png, <id>-flu.png) found"])
    return Manifest(root.name, root, tuple(cases), str(root))


def with_generated_candidates(manifest: Manifest, source: str) -> Manifest:
    """Add a path-less candidate tagged `source` to every case that has none (filled in by generation)."""
    cases = tuple(
        case if any(c.source == source for c in case.candidates)
        else replace(case, candidates=case.candidates + (CandidateSpec(source, None, is_real_source(source)),))
        for case in manifest.cases
    )
    return replace(manifest, cases=cases)


def resolve_inside(root: Path, rel: str) -> Path:
    """The real path of `rel` under `root`; ValueError for '..', absolute paths outside or symlinks escaping."""
    if not rel or not rel.strip():
        raise ValueError("empty path")
    parts = set(PurePosixPath(rel).parts) | set(PureWindowsPath(rel).parts)
    if ".." in parts:
        raise ValueError(f"path {rel!r} contains '..'; every file must lie inside the study folder")
    real_root = root.resolve()
    target = (root / rel).resolve()  # follows symlinks, so a link pointing outside is caught below
    if target != real_root and real_root not in target.parents:
        raise ValueError(f"path {rel!r} resolves to {str(target)!r}, outside the study folder {str(real_root)!r}")
    return target


def validate_manifest(manifest: Manifest, *, pair_mode: bool = False, allow_missing: bool = False) -> None:
    """Check every case and file up front; raise one ManifestError listing all problems."""
    problems: list[str] = []
    seen_keys: set[str] = set()
    if not manifest.cases:
        problems.append("no cases")
    for case in manifest.cases:
        where = f"case {case.key!r}"
        if case.key in seen_keys:
            problems.append(f"{where}: duplicate case id")
        seen_keys.add(case.key)
        if not case.text.strip():
            problems.append(f"{where}: progression text is missing")
        problems += _file_problems(manifest.root, case.prior, f"{where} prior")
        problems += _candidate_problems(manifest.root, case, where, pair_mode, allow_missing)
    if problems:
        raise ManifestError(manifest.origin, problems)


def _candidate_problems(root: Path, case: CaseSpec, where: str, pair_mode: bool, allow_missing: bool) -> list[str]:
    problems = []
    if not case.candidates:
        problems.append(f"{where}: no candidate follow-ups")
    if pair_mode and len(case.candidates) != 2:
        problems.append(f"{where}: pair mode needs exactly 2 candidates, found {len(case.candidates)}")
    sources = [c.source for c in case.candidates]
    for duplicate in sorted({s for s in sources if sources.count(s) > 1}):
        problems.append(f"{where}: source {duplicate!r} appears more than once")
    for candidate in case.candidates:
        label = f"{where} candidate {candidate.source or '?'!r}"
        if not candidate.source:
            problems.append(f"{where}: a candidate has no source tag")
        if candidate.path is None:
            if not allow_missing:
                problems.append(f"{label}: no path (pass --generate to make it with an engine)")
            elif candidate.is_real:
                problems.append(f"{label}: a real follow-up cannot be generated; give its path")
            continue
        problems += _file_problems(root, candidate.path, label)
    return problems


def _file_problems(root: Path, rel: str, label: str) -> list[str]:
    if not rel:
        return [f"{label}: no path given"]
    try:
        path = resolve_inside(root, rel)
    except ValueError as exc:
        return [f"{label}: {exc}"]
    if not path.is_file():
        return [f"{label}: file {rel!r} not found"]
    try:
        read_gray(path)
    except ImageInputError as exc:
        return [f"{label}: {rel!r} is not a usable image ({exc})"]
    return []
