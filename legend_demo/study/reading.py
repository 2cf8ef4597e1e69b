"""What a reader sees: their next usable unrated case (blinded: no source, no candidate id) and their progress.

A case whose files are missing, moved outside the study folder or changed since `study create` (SHA-256) is
flagged (legend_demo.study.flags) and skipped for every reader, so one broken file never blocks a session. Every
file of a case is checked before any of its screens is shown: a case is withdrawn whole, never after one of its
follow-ups was rated.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

from .flags import flag_case
from .images import file_sha256
from .studies import study_file


class CaseUnavailable(Exception):
    """A case that cannot be shown; `reason` names files, so it is for the admin only."""

    def __init__(self, case_id: int, reason: str):
        super().__init__(reason)
        self.case_id, self.reason = case_id, reason


@dataclass(frozen=True)
class CaseView:
    """One screen for a reader. Deliberately carries no source tag and no database ids of candidates."""

    position: int  # place in this reader's order (what a submission names)
    total: int  # cases this reader will rate (skipped ones not counted)
    prior: Path
    text: str
    candidates: tuple[Path, ...]  # one, or two side by side (left, right)
    number: int = 0  # 1-based count among the cases this reader rates (0: same as position)
    skipped: int = 0  # cases skipped just before this one because they could not be shown

    @property
    def progress_label(self) -> str:
        return f"Case {self.number or self.position} of {self.total}"


def progress(conn: sqlite3.Connection, reader_id: int) -> tuple[int, int]:
    """(screens fully rated, screens rated or still to rate) for the reader; skipped cases count in neither."""
    done = conn.execute("SELECT COUNT(*) FROM slots WHERE reader_id = ?", (reader_id,)).fetchone()[0] - len(
        _unrated_positions(conn, reader_id, include_flagged=True))
    return done, done + len(_open_positions(conn, reader_id))


def next_position(conn: sqlite3.Connection, reader_id: int) -> int | None:
    """The first position not yet fully rated and not flagged (None when the reader has finished)."""
    open_positions = _open_positions(conn, reader_id)
    return open_positions[0] if open_positions else None


def _open_positions(conn: sqlite3.Connection, reader_id: int) -> list[int]:
    return _unrated_positions(conn, reader_id, include_flagged=False)


def _unrated_positions(conn: sqlite3.Connection, reader_id: int, include_flagged: bool) -> list[int]:
    flagged = "" if include_flagged else "AND s.case_id NOT IN (SELECT case_id FROM case_flags)"
    rows = conn.execute(
        f"""SELECT i.position FROM slot_items i
           JOIN slots s ON s.reader_id = i.reader_id AND s.position = i.position
           LEFT JOIN ratings r ON r.reader_id = i.reader_id AND r.candidate_id = i.candidate_id
           WHERE i.reader_id = ? AND r.id IS NULL {flagged}
           GROUP BY i.position ORDER BY i.position""",
        (reader_id,),
    ).fetchall()
    return [r["position"] for r in rows]


def case_view(conn: sqlite3.Connection, reader_id: int, position: int) -> CaseView:
    """The blinded view of one of the reader's positions; CaseUnavailable when a file is missing or changed."""
    slot = conn.execute(
        """SELECT c.id, c.prior_path, c.prior_sha256, c.text FROM slots s JOIN cases c ON c.id = s.case_id
           WHERE s.reader_id = ? AND s.position = ?""",
        (reader_id, position),
    ).fetchone()
    if slot is None:
        raise ValueError(f"position {position} is not part of this reader's study")
    items = conn.execute(
        """SELECT d.path, d.sha256 FROM slot_items i JOIN candidates d ON d.id = i.candidate_id
           WHERE i.reader_id = ? AND i.position = ? ORDER BY i.side""",
        (reader_id, position),
    ).fetchall()
    for other in conn.execute("SELECT path, sha256 FROM candidates WHERE case_id = ?", (slot["id"],)).fetchall():
        _checked(conn, slot["id"], other["path"], other["sha256"])  # a case is withdrawn whole, before any screen of it
    done, total = progress(conn, reader_id)
    return CaseView(
        position=position, total=total, prior=_checked(conn, slot["id"], slot["prior_path"], slot["prior_sha256"]),
        text=slot["text"], candidates=tuple(_checked(conn, slot["id"], i["path"], i["sha256"]) for i in items),
        number=done + 1,
    )


def _checked(conn: sqlite3.Connection, case_id: int, rel: str, sha256: str | None) -> Path:
    """The file's absolute path after checking it is inside the study folder, present and unchanged."""
    try:
        path = study_file(conn, rel)
        if not path.is_file():
            raise CaseUnavailable(case_id, f"file {rel!r} is missing")
        if sha256 is not None and file_sha256(path) != sha256:
            raise CaseUnavailable(case_id, f"file {rel!r} changed after the study was created")
    except (ValueError, OSError) as exc:
        raise CaseUnavailable(case_id, f"file {rel!r} cannot be used ({exc})") from None
    return path


def next_case(conn: sqlite3.Connection, reader_id: int) -> CaseView | None:
    """The reader's next usable case (flagging and skipping unusable ones), or None when every case is done."""
    skipped = 0
    while (position := next_position(conn, reader_id)) is not None:
        try:
            view = case_view(conn, reader_id, position)
        except CaseUnavailable as exc:
            flag_case(conn, exc.case_id, exc.reason)
            skipped += 1
            continue
        return replace(view, skipped=skipped)
    return None
