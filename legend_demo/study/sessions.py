"""Login sessions: a random token kept by the browser, stored here only as a SHA-256 hash."""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from .db import transaction, utc_now


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(conn: sqlite3.Connection, reader_id: int) -> str:
    """A new session token for the reader (the plain token is returned once and never stored)."""
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        conn.execute("INSERT INTO sessions (token_hash, reader_id, created_at) VALUES (?, ?, ?)", (_digest(token), reader_id, utc_now()))
    return token


def session_reader(conn: sqlite3.Connection, token: str | None) -> int | None:
    """The reader id for a live token, else None."""
    if not token or not isinstance(token, str):
        return None
    row = conn.execute("SELECT reader_id FROM sessions WHERE token_hash = ?", (_digest(token),)).fetchone()
    return row["reader_id"] if row else None


def close_session(conn: sqlite3.Connection, token: str | None) -> None:
    if token:
        with transaction(conn):
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))


def mark_shown(conn: sqlite3.Connection, token: str, position: int) -> None:
    """Record when this session first showed `position` (kept across page reloads of the same case)."""
    with transaction(conn):
        conn.execute(
            "UPDATE sessions SET shown_position = ?, shown_at = ? WHERE token_hash = ? AND shown_position IS NOT ?",
            (position, time.time(), _digest(token), position),
        )


def seconds_on_case(conn: sqlite3.Connection, token: str, position: int) -> float:
    """Seconds since this session showed `position`; 0 if it never did."""
    row = conn.execute("SELECT shown_position, shown_at FROM sessions WHERE token_hash = ?", (_digest(token),)).fetchone()
    if row is None or row["shown_position"] != position or row["shown_at"] is None:
        return 0.0
    return max(0.0, time.time() - row["shown_at"])
