"""Time per case: the seconds a case was on screen in an active study page, summed over every page that showed it.

Definition (README "Reader studies"): the study page counts a second only while the case is shown, the browser
tab is visible and focused, and the reader gave some input (mouse, touch, wheel or key) within the last
IDLE_LIMIT_S seconds — so time away, a hidden tab and long idle stretches do not count. The page reports what it
counted every REPORT_EVERY_S seconds and before a submit; what it counted but could not report (or could not
confirm) before a reload or a closed tab is kept in the tab's sessionStorage and sent by the next page under the
same report id, which the server counts once. The server adds every report to the case's total, capped by the
wall-clock time since the previous report and the total by the time since the case was first shown (each + slack),
so no page — nor two pages at once — can claim more time than passed. The total is stored with the rating.
A client without the study page (the API) reports nothing: its ratings carry 0 s.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time

from .db import transaction
from .reading import next_position

IDLE_LIMIT_S = 120.0  # the page stops counting after this long without input (a reader studying a film still moves)
REPORT_EVERY_S = 15.0  # the page reports at least this often while it counts
SLACK_S = 5.0  # a report may exceed the wall-clock time since the previous one by this much (clocks, network)
MAX_REPORT_S = 24 * 3600.0  # anything larger is not a measurement
RECENT_REPORTS = 32  # report ids remembered per case: a resent report is counted once


def start_case(conn: sqlite3.Connection, reader_id: int, position: int, now: float | None = None) -> None:
    """Note when a case was first shown to the reader (kept across reloads and logins)."""
    now = time.time() if now is None else now
    if conn.execute("SELECT 1 FROM case_time WHERE reader_id = ? AND position = ?", (reader_id, position)).fetchone():
        return  # shown before: nothing to write (a page load stays read-only)
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO case_time (reader_id, position, first_shown, last_report) VALUES (?, ?, ?, ?)",
                     (reader_id, position, now, now))


def report_active(conn: sqlite3.Connection, reader_id: int, position: int, seconds: float,
                  now: float | None = None, report_id: str | None = None) -> float:
    """Add `seconds` of active viewing of the reader's open case `position`; return the seconds accepted (0 for
    any other case, and for a `report_id` already counted: a page resends a report it could not confirm).
    ValueError when `seconds` is not a finite number from 0 to MAX_REPORT_S or the id is not short text."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or not 0.0 <= seconds <= MAX_REPORT_S:
        raise ValueError(f"active seconds must be a finite number from 0 to {MAX_REPORT_S:.0f}, got {seconds!r}")
    if report_id is not None and (not isinstance(report_id, str) or not 0 < len(report_id) <= 64):
        raise ValueError("a report id must be text of 1–64 characters")
    now = time.time() if now is None else now
    with transaction(conn):
        if position != next_position(conn, reader_id):
            return 0.0
        row = conn.execute("SELECT active_s, first_shown, last_report, recent_reports FROM case_time "
                           "WHERE reader_id = ? AND position = ?", (reader_id, position)).fetchone()
        if row is None:  # shown by a page this server did not open (an older server): count from now on
            conn.execute("INSERT INTO case_time (reader_id, position, first_shown, last_report) VALUES (?, ?, ?, ?)",
                         (reader_id, position, now, now))
            total, first, last, recent = 0.0, now, now, []
        else:
            total, first, last = row["active_s"], row["first_shown"], row["last_report"]
            recent = json.loads(row["recent_reports"] or "[]")
        if report_id is not None and report_id in recent:
            return 0.0
        # never more than the time since the previous report, nor a total beyond the time since the case was shown
        accepted = max(0.0, min(float(seconds), max(0.0, now - last) + SLACK_S, max(0.0, now - first) + SLACK_S - total))
        recent = (recent + [report_id])[-RECENT_REPORTS:] if report_id is not None else recent
        conn.execute("""UPDATE case_time SET active_s = active_s + ?, last_report = ?, reports = reports + 1,
                        recent_reports = ? WHERE reader_id = ? AND position = ?""",
                     (accepted, max(now, last), json.dumps(recent), reader_id, position))
    return accepted


def active_seconds(conn: sqlite3.Connection, reader_id: int, position: int) -> float:
    """The case's active seconds so far (0 when no page reported any)."""
    row = conn.execute("SELECT active_s FROM case_time WHERE reader_id = ? AND position = ?",
                       (reader_id, position)).fetchone()
    return 0.0 if row is None else float(row["active_s"])
