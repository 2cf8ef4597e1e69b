"""Login throttling: temporary, growing lockouts per (name, client), per client and per name (issue 12 §2).

Every attempt is written to `login_attempts` BEFORE the password is checked (as 'pending', then 'ok' or
'failed'), inside the transaction that checks the limits. For one (name, client) pair a pending attempt already
counts as a failure, so a burst of parallel guesses at one password is counted exactly; the per-client and
per-name limits count finished failures only, so many readers behind one address (a hospital's NAT) can log in
at the same moment.
A lockout refuses every attempt, the right password included, without spending a password hash on it.

The client is the connection's address (a forwarded address only from a proxy the operator trusts, see
legend_demo.ui.study_server); the device is the browser's signed device cookie (legend_demo.study.devices), which
a client cannot forge. A device that logged in to a name before is known for that name: its attempts at that
name are limited per (name, device) only, so a reader on their usual browser still gets in while someone guesses
their password from anywhere — the same address (a shared NAT) included (issue 24 §3, §5). The admin can lift a
name's lock at once (`unlock_name`, `study unlock`): failures for that name before the unlock stop counting.
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
    trusted_s: float = 30 * 86400.0  # a device that logged in to a name stays known for it this long
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


def known_device(conn: sqlite3.Connection, key: str, device: str | None, policy: ThrottlePolicy, now: float) -> bool:
    """True when `device` (a verified device hash) logged in to name `key` within `trusted_s`."""
    if not device:
        return False
    row = conn.execute("SELECT 1 FROM login_attempts WHERE outcome = 'ok' AND device = ? AND account_key = ? AND at >= ?",
                       (device, key, now - policy.trusted_s)).fetchone()
    return row is not None


def unlocked_at(conn: sqlite3.Connection, key: str) -> float:
    """When the admin last unlocked name `key` (0: never)."""
    row = conn.execute("SELECT at FROM login_unlocks WHERE account_key = ?", (key,)).fetchone()
    return 0.0 if row is None else row[0]


def retry_after(conn: sqlite3.Connection, key: str, client: str, policy: ThrottlePolicy, now: float,
                device: str | None = None) -> float:
    """Seconds before an attempt for name `key` from `client` (and verified `device`, if any) may be checked (0: now)."""
    since = now - policy.window_s
    name_since = max(since, unlocked_at(conn, key))  # the admin's unlock forgets the name's earlier failures
    if known_device(conn, key, device, policy, now):
        return lock_wait(_failures(conn, "account_key = ? AND device = ?", (key, device), name_since, pending=True),
                         policy.pair_limit, policy, now)
    return max(
        lock_wait(_failures(conn, "account_key = ? AND client = ?", (key, client), name_since, pending=True),
                  policy.pair_limit, policy, now),
        lock_wait(_failures(conn, "client = ?", (client,), since), policy.client_limit, policy, now),
        lock_wait(_failures(conn, "account_key = ?", (key,), name_since), policy.account_limit, policy, now),
    )


def begin_attempt(conn: sqlite3.Connection, name: str, client: str, policy: ThrottlePolicy,
                  now: float | None = None, device: str | None = None) -> tuple[int | None, float]:
    """(attempt id, 0) when the password may be checked — the attempt is recorded as pending — or
    (None, seconds to wait) when locked out (recorded as refused). `device`: a verified device hash or None."""
    now, key = time.time() if now is None else now, account_key(name)
    with transaction(conn):
        wait = retry_after(conn, key, client, policy, now, device)
        outcome = "refused" if wait > 0 else "pending"
        attempt = conn.execute("INSERT INTO login_attempts (at, account_key, client, outcome, device) VALUES (?, ?, ?, ?, ?)",
                               (now, key, client, outcome, device)).lastrowid
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


def unlock_name(conn: sqlite3.Connection, name: str, now: float | None = None,
                policy: ThrottlePolicy = ThrottlePolicy()) -> int:
    """The admin lifts every lock on `name` (its per-name and per-(name, client) locks; a client's lock over all
    names stays): failures for it before now stop counting. Returns how many recent failures were forgiven."""
    now, key = time.time() if now is None else now, account_key(name)
    with transaction(conn):
        forgiven = conn.execute("SELECT COUNT(*) FROM login_attempts WHERE outcome = 'failed' AND account_key = ? AND at >= ?",
                                (key, max(now - policy.window_s, unlocked_at(conn, key)))).fetchone()[0]
        conn.execute("INSERT INTO login_unlocks (account_key, at) VALUES (?, ?) "
                     "ON CONFLICT (account_key) DO UPDATE SET at = excluded.at", (key, now))
    log.warning("study login: the admin unlocked a name (%d recent failures forgiven)", forgiven)
    return forgiven
