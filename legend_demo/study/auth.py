"""Logging in to a study: reader accounts and the admin, throttled, with a fresh session token per login.

The admin logs in on the same form with the name ADMIN_NAME and the admin password set at `study create`
(or LEGEND_STUDY_ADMIN_PASSWORD when the study has none); no reader may be called that.

A login has three steps — `start_login` (the throttle; the attempt is recorded as pending), `check_credentials`
(the scrypt check, ≈16 MiB and tens of ms: the server bounds how many run at once, issue 24 §5) and
`finish_login` (the outcome recorded, a new session) — and `login` runs them in a row.
"""
from __future__ import annotations

import hmac
import math
import sqlite3
from dataclasses import dataclass

from ..core import settings
from .passwords import verify_password
from .readers import ADMIN_NAME, authenticate
from .sessions import Role, open_session
from .throttle import ThrottlePolicy, begin_attempt, finish_attempt

ADMIN_PASSWORD_ENV = "LEGEND_STUDY_ADMIN_PASSWORD"
MAX_NAME_CHARS, MAX_PASSWORD_CHARS = 100, 1024
BAD_LOGIN = "Unknown name or wrong password. Please check both and try again."
LOCKED = "Too many failed logins. Please wait {minutes} and try again."


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None  # the new session token (None: refused)
    role: Role | None
    message: str  # neutral: never says whether the name exists
    retry_after_s: float = 0.0


def admin_password_ok(conn: sqlite3.Connection, password: str | None) -> bool:
    """The admin password set at `study create`, else the LEGEND_STUDY_ADMIN_PASSWORD environment variable."""
    if not password or not isinstance(password, str):
        return False
    stored = conn.execute("SELECT admin_password_hash FROM study WHERE id = 1").fetchone()[0]
    if stored:
        return verify_password(password, stored)
    env = settings.get(ADMIN_PASSWORD_ENV) or ""
    return bool(env) and hmac.compare_digest(password.encode(), env.encode())


def is_admin_name(name: str) -> bool:
    return (name or "").strip().casefold() == ADMIN_NAME


@dataclass(frozen=True)
class Checked:
    """What `check_credentials` found: the role (None: wrong name or password), the reader, who (for the log)."""
    role: Role | None
    reader_id: int | None
    who: str


def login(conn: sqlite3.Connection, name: str, password: str, client: str, throttle: ThrottlePolicy, *,
          replaces: str | None = None, device: str | None = None) -> LoginOutcome:
    """Check the throttle, then the password; on success a new session (ending the browser's old token).
    `client`: the client's address; `device`: the verified hash of its device cookie, or None."""
    started = start_login(conn, name, password, client, throttle, device)
    if isinstance(started, LoginOutcome):
        return started
    return finish_login(conn, started, check_credentials(conn, name, password), client, replaces=replaces)


def start_login(conn: sqlite3.Connection, name: str, password: str, client: str, throttle: ThrottlePolicy,
                device: str | None = None) -> int | LoginOutcome:
    """The attempt's id when its password may be checked, else the refusal (malformed or locked out)."""
    if not isinstance(name, str) or not isinstance(password, str):
        return LoginOutcome(None, None, BAD_LOGIN)
    attempt, wait = begin_attempt(conn, name, client, throttle, device=device)
    if attempt is None:
        return LoginOutcome(None, None, LOCKED.format(minutes=_minutes(wait)), wait)
    return attempt


def finish_login(conn: sqlite3.Connection, attempt: int, checked: Checked, client: str, *,
                 replaces: str | None = None) -> LoginOutcome:
    """Record the attempt's outcome; on success open a new session (ending the browser's old token `replaces`)."""
    finish_attempt(conn, attempt, checked.reader_id, checked.role is not None, client, checked.who)
    if checked.role is None:
        return LoginOutcome(None, None, BAD_LOGIN)
    return LoginOutcome(open_session(conn, checked.role, checked.reader_id, replaces=replaces), checked.role, "")


def check_credentials(conn: sqlite3.Connection, name: str, password: str) -> Checked:
    """The password check (scrypt): the expensive step of a login."""
    return Checked(*_check(conn, name, password))


def _check(conn: sqlite3.Connection, name: str, password: str) -> tuple[Role | None, int | None, str]:
    """(role, reader id, who for the log); role None when the name or password is wrong."""
    if len(name) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return None, None, "an over-long name or password"
    if is_admin_name(name):
        return ("admin" if admin_password_ok(conn, password) else None), None, "admin"
    reader_id = authenticate(conn, name, password)
    if reader_id is not None:
        return "reader", reader_id, f"reader {name.strip()!r}"
    known = conn.execute("SELECT 1 FROM readers WHERE name = ?", (name.strip(),)).fetchone()
    return None, None, f"reader {name.strip()!r}" if known else "an unknown name"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
