"""Login throttling: temporary, growing lockouts per (name, client), per client and per name (issue 12 §2).

Every attempt is written to `login_attempts` BEFORE the password is checked (as 'pending', then 'ok' or
'failed'), inside the transaction that checks the limits. For one (name, client) pair a pending attempt already
counts as a failure, so a burst of parallel guesses at one password is counted exactly; the per-client and
per-name limits count finished failures only, so many readers behind one address (a hospital's NAT) can log in
at the same moment.
A lockout refuses every attempt, the right password included, without spending a password hash on it. A client
that logged in to a name before keeps access to it while that name is under a distributed attack (the per-name
lock spares it), so a reader can still log in while someone else guesses their password.
Names are stored as SHA-256 keys, so a password typed into the name field by mistake is not kept in clear.
"""
from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from dataclasses import dataclass

from .db import transaction

log = logging.getLogger("legend_demo.study.auth")


@dataclass(frozen=True)
class ThrottlePolicy:
    window_s: float = 15 * 60.0  # failures older than this are forgotten
    pair_limit: int = 5  # failures for one name from one client before it is locked
    client_limit: int = 20  # failures from one client over every name
    account_limit: int = 50  # failures for one name from every client (clients that logged in to it before are spared)
    base_lock_s: float = 30.0  # first lockout; doubles with every further failure
    max_lock_s: float = 15 * 60.0
    trusted_s: float = 30 * 86400.0  # a successful login from a client spares it the per-name lock this long
    keep_s: float = 30 * 86400.0  # attempts are kept (the admin's record) this long


def account_key(name: str) -> str:
    """Throttle key of a typed name (case-folded, stripped)."""
    return hashlib.sha256((name or "").strip().casefold().encode("utf-8")).hexdigest()


def lock_wait(failures: list[float], limit: int, policy: ThrottlePolicy, now: float) -> float:
    """Seconds left of the lockout earned by `failures` (sorted times): base·2^(n−limit) after the last, capped."""
    if len(failures) < limit:
        return 0.0
    lock = min(policy.base_lock_s * 2.0 ** (len(failures) - limit), policy.max_lock_s)
    return max(0.0, failures[-1] + lock - now)


def _failures(conn: sqlite3.Connection, where: str, args: tuple, since: float, pending: bool = False) -> list[float]:
    outcomes = "('failed', 'pending')" if pending else "('failed')"
    rows = conn.execute(f"SELECT at FROM login_attempts WHERE outcome IN {outcomes} AND at >= ? AND {where} ORDER BY at",
                        (since, *args)).fetchall()
    return [r["at"] for r in rows]


def _trusted(conn: sqlite3.Connection, key: str, client: str, policy: ThrottlePolicy, now: float) -> bool:
    row = conn.execute("SELECT 1 FROM login_attempts WHERE outcome = 'ok' AND account_key = ? AND client = ? AND at >= ?",
                       (key, client, now - policy.trusted_s)).fetchone()
    return row is not None


def retry_after(conn: sqlite3.Connection, key: str, client: str, policy: ThrottlePolicy, now: float) -> float:
    """Seconds before an attempt for name `key` from `client` may be checked (0: now)."""
    since = now - policy.window_s
    waits = [
        lock_wait(_failures(conn, "account_key = ? AND client = ?", (key, client), since, pending=True),
                  policy.pair_limit, policy, now),
        lock_wait(_failures(conn, "client = ?", (client,), since), policy.client_limit, policy, now),
    ]
    if not _trusted(conn, key, client, policy, now):
        waits.append(lock_wait(_failures(conn, "account_key = ?", (key,), since), policy.account_limit, policy, now))
    return max(waits)


def begin_attempt(conn: sqlite3.Connection, name: str, client: str, policy: ThrottlePolicy,
                  now: float | None = None) -> tuple[int | None, float]:
    """(attempt id, 0) when the password may be checked — the attempt is recorded as pending — or
    (None, seconds to wait) when locked out (recorded as refused)."""
    now, key = time.time() if now is None else now, account_key(name)
    with transaction(conn):
        wait = retry_after(conn, key, client, policy, now)
        outcome = "refused" if wait > 0 else "pending"
        attempt = conn.execute("INSERT INTO login_attempts (at, account_key, client, outcome) VALUES (?, ?, ?, ?)",
                               (now, key, client, outcome)).lastrowid
        if attempt % 500 == 0:  # now and then: forget old attempts
            conn.execute("DELETE FROM login_attempts WHERE at < ?", (now - policy.keep_s,))
    if wait > 0:
        log.warning("study login refused (locked for %.0f s more): client %s", wait, client)
        return None, wait
    return attempt, 0.0


def finish_attempt(conn: sqlite3.Connection, attempt: int, reader_id: int | None, ok: bool, client: str, who: str) -> None:
    """Record the attempt's result (who: the reader's name, 'admin', or 'an unknown name')."""
    with transaction(conn):
        conn.execute("UPDATE login_attempts SET outcome = ?, reader_id = ? WHERE id = ?",
                     ("ok" if ok else "failed", reader_id, attempt))
    if ok:
        log.info("study login ok: %s from %s", who, client)
    else:
        log.warning("study login failed: %s from %s", who, client)
