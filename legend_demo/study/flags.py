"""Cases that cannot be shown (a file missing, replaced or unreadable since `study create`): skipped for every
reader and listed for the admin with the reason. Readers never see the reason (it names files)."""
from __future__ import annotations

import logging
import sqlite3

from .db import transaction, utc_now

log = logging.getLogger("legend_demo.study")


def flag_case(conn: sqlite3.Connection, case_id: int, reason: str) -> None:
    """Mark a case unusable (the first reason is kept); logged for the operator."""
    with transaction(conn):
        inserted = conn.execute(
            "INSERT OR IGNORE INTO case_flags (case_id, reason, flagged_at) VALUES (?, ?, ?)", (case_id, reason, utc_now())
        ).rowcount
    if inserted:
        key = conn.execute("SELECT case_key FROM cases WHERE id = ?", (case_id,)).fetchone()[0]
        log.warning("study case %r flagged and skipped for every reader: %s", key, reason)


def flagged_cases(conn: sqlite3.Connection) -> list[dict[str, str]]:
    """Every flagged case for the admin: case key, reason, when."""
    rows = conn.execute(
        "SELECT c.case_key, f.reason, f.flagged_at FROM case_flags f JOIN cases c ON c.id = f.case_id ORDER BY f.flagged_at"
    ).fetchall()
    return [{"case": r["case_key"], "reason": r["reason"], "flagged_at": r["flagged_at"]} for r in rows]


def clear_flag(conn: sqlite3.Connection, case_key: str) -> None:
    """Show a repaired case again: re-check its files (inside the study folder, readable images), record their
    new fingerprints and remove the flag. ValueError when the case is unknown, not flagged or still broken."""
    from .images import file_sha256, read_gray
    from .studies import study_file

    case = conn.execute("SELECT c.id, c.prior_path FROM cases c JOIN case_flags f ON f.case_id = c.id WHERE c.case_key = ?",
                        (case_key,)).fetchone()
    if case is None:
        raise ValueError(f"case {case_key!r} is not flagged (see `study flags`)")
    candidates = conn.execute("SELECT id, path FROM candidates WHERE case_id = ?", (case["id"],)).fetchall()
    fingerprints = {}
    for rel in [case["prior_path"], *(c["path"] for c in candidates)]:
        path = study_file(conn, rel)
        try:
            read_gray(path)
            fingerprints[rel] = file_sha256(path)
        except Exception as exc:  # noqa: BLE001 - ImageInputError, OSError...: the case stays flagged
            raise ValueError(f"case {case_key!r} still cannot be shown: {rel!r}: {exc}") from None
    with transaction(conn):
        conn.execute("UPDATE cases SET prior_sha256 = ? WHERE id = ?", (fingerprints[case["prior_path"]], case["id"]))
        for c in candidates:
            conn.execute("UPDATE candidates SET sha256 = ? WHERE id = ?", (fingerprints[c["path"]], c["id"]))
        conn.execute("DELETE FROM case_flags WHERE case_id = ?", (case["id"],))
