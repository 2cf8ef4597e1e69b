"""Creating a study in a database from a validated manifest, and reading its settings back."""
from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .db import connect, transaction, utc_now
from .images import file_sha256
from .manifest import Manifest, resolve_inside, validate_manifest
from .passwords import hash_password


@dataclass(frozen=True)
class StudySettings:
    name: str
    root: Path
    seed: int
    allow_changes: bool
    pair_mode: bool
    has_admin_password: bool


def create_study(
    db_path: str | Path,
    manifest: Manifest,
    *,
    allow_changes: bool = False,
    pair_mode: bool = False,
    admin_password: str | None = None,
    seed: int | None = None,
) -> StudySettings:
    """Validate `manifest` (every file), then store the study, its cases and candidates in one transaction."""
    validate_manifest(manifest, pair_mode=pair_mode)
    admin_hash = hash_password(admin_password) if admin_password else None
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    conn = connect(db_path, create=True)
    try:
        with transaction(conn):
            if conn.execute("SELECT 1 FROM study").fetchone():
                raise ValueError(f"{str(db_path)!r} already holds a study; use a new --db file")
            conn.execute(
                "INSERT INTO study (id, name, root, seed, allow_changes, pair_mode, admin_password_hash, created_at)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (manifest.name, str(manifest.root.resolve()), seed, int(allow_changes), int(pair_mode), admin_hash, utc_now()),
            )
            for case in manifest.cases:
                case_id = conn.execute(
                    "INSERT INTO cases (case_key, prior_path, prior_sha256, text) VALUES (?, ?, ?, ?)",
                    (case.key, case.prior, _fingerprint(manifest.root, case.prior), case.text.strip()),
                ).lastrowid
                for candidate in case.candidates:
                    conn.execute(
                        "INSERT INTO candidates (case_id, source, is_real, path, sha256) VALUES (?, ?, ?, ?, ?)",
                        (case_id, candidate.source, int(candidate.is_real), candidate.path,
                         _fingerprint(manifest.root, candidate.path)),
                    )
        return study_settings(conn)
    finally:
        conn.close()


def _fingerprint(root: Path, rel: str) -> str:
    """SHA-256 of a validated study file: a file replaced later is caught before a reader sees it."""
    return file_sha256(resolve_inside(root, rel))


def study_settings(conn: sqlite3.Connection) -> StudySettings:
    row = conn.execute("SELECT * FROM study WHERE id = 1").fetchone()
    if row is None:
        raise ValueError("this database holds no study yet; run `study create` first")
    return StudySettings(
        name=row["name"], root=Path(row["root"]), seed=row["seed"], allow_changes=bool(row["allow_changes"]),
        pair_mode=bool(row["pair_mode"]), has_admin_password=row["admin_password_hash"] is not None,
    )


def study_file(conn: sqlite3.Connection, rel: str) -> Path:
    """Absolute path of a stored study file, re-checked to lie inside the study folder."""
    return resolve_inside(study_settings(conn).root, rel)
