"""Reader accounts: created by the admin with a hashed password, authenticated at login."""
from __future__ import annotations

import sqlite3

from .assignment import assign_reader
from .db import transaction, utc_now
from .passwords import hash_password, verify_password

ADMIN_NAME = "admin"  # the admin logs in under this name (legend_demo.study.auth), so no reader may use it
_DUMMY_HASH = None  # lazily made: checking unknown names costs as much as known ones (no user-name oracle)


def add_reader(conn: sqlite3.Connection, name: str, password: str) -> int:
    """Create a reader and their blinded order in one transaction; return the reader id."""
    if not isinstance(name, str):
        raise ValueError(f"reader name must be text, got {type(name).__name__}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError(f"reader name must have 1–100 characters (got {name!r})")
    if name.casefold() == ADMIN_NAME:
        raise ValueError(f"{name!r} is the admin's login name; choose another reader name")
    password_hash = hash_password(password)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM readers WHERE name = ?", (name,)).fetchone():
            raise ValueError(f"reader {name!r} already exists")
        if conn.execute("SELECT 1 FROM study").fetchone() is None:
            raise ValueError("this database holds no study yet; run `study create` first")
        reader_id = conn.execute(
            "INSERT INTO readers (name, password_hash, created_at) VALUES (?, ?, ?)", (name, password_hash, utc_now())
        ).lastrowid
        assign_reader(conn, reader_id, name)
    return reader_id


def authenticate(conn: sqlite3.Connection, name: str, password: str) -> int | None:
    """The reader id when name and password match, else None (same work either way)."""
    global _DUMMY_HASH
    row = conn.execute("SELECT id, password_hash FROM readers WHERE name = ?", ((name or "").strip(),)).fetchone()
    if row is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password("not-a-real-password")
        verify_password(password or "", _DUMMY_HASH)
        return None
    return row["id"] if verify_password(password or "", row["password_hash"]) else None

