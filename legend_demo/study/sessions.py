"""Login sessions (reader or admin): a random token kept by the browser in an HttpOnly cookie, stored here only
as a SHA-256 hash. Sessions end after `idle_s` without a request or `max_age_s` after login, whichever is first;
every login makes a new token and ends the one the browser held (rotation)."""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal, Mapping

from ..core import settings
from .db import transaction

Role = Literal["reader", "admin"]
IDLE_MINUTES_ENV = "LEGEND_STUDY_IDLE_MINUTES"
MAX_HOURS_ENV = "LEGEND_STUDY_SESSION_HOURS"


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: float = 30 * 60.0  # a reader away for half an hour logs in again (and resumes where they were)
    max_age_s: float = 12 * 3600.0  # no session outlives a working day
    touch_every_s: float = 30.0  # last_seen is written at most this often (keeps page loads read-only)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SessionPolicy":
        """LEGEND_STUDY_IDLE_MINUTES and LEGEND_STUDY_SESSION_HOURS (positive numbers) override the defaults."""
        idle = settings.get(IDLE_MINUTES_ENV, env) * 60
        max_age = settings.get(MAX_HOURS_ENV, env) * 3600
        return cls(idle_s=idle, max_age_s=max_age, touch_every_s=min(cls.touch_every_s, idle / 4))


@dataclass(frozen=True)
class Session:
    token_hash: str
    role: Role
    reader_id: int | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(conn: sqlite3.Connection, role: Role, reader_id: int | None = None, *,
                 replaces: str | None = None, now: float | None = None) -> str:
    """A new session token (returned once, never stored); the browser's previous token `replaces` ends."""
    if role not in ("reader", "admin") or (role == "reader") != (reader_id is not None):
        raise ValueError(f"a {role!r} session needs {'a' if role == 'reader' else 'no'} reader id")
    token, now = secrets.token_urlsafe(32), time.time() if now is None else now
    with transaction(conn):
        if replaces:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(replaces),))
        conn.execute("INSERT INTO sessions (token_hash, role, reader_id, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                     (_digest(token), role, reader_id, now, now))
    return token


def find_session(conn: sqlite3.Connection, token: str | None, policy: SessionPolicy,
                 now: float | None = None) -> Session | None:
    """The live session of `token`, else None; an expired one is deleted. Refreshes its idle clock."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    now = time.time() if now is None else now
    digest = _digest(token)
    row = conn.execute("SELECT role, reader_id, created_at, last_seen FROM sessions WHERE token_hash = ?", (digest,)).fetchone()
    if row is None:
        return None
    if now - row["last_seen"] > policy.idle_s or now - row["created_at"] > policy.max_age_s:
        with transaction(conn):
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (digest,))
        return None
    if now - row["last_seen"] > policy.touch_every_s:
        with transaction(conn):
            conn.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, digest))
    return Session(digest, row["role"], row["reader_id"])


def close_session(conn: sqlite3.Connection, token: str | None) -> None:
    if token and isinstance(token, str):
        with transaction(conn):
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))


def purge_expired(conn: sqlite3.Connection, policy: SessionPolicy, now: float | None = None) -> int:
    """Delete every expired session; return how many."""
    now = time.time() if now is None else now
    with transaction(conn):
        return conn.execute("DELETE FROM sessions WHERE last_seen < ? OR created_at < ?",
                            (now - policy.idle_s, now - policy.max_age_s)).rowcount
