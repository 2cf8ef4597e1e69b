"""What a reader sees: their next unrated case (blinded: no source, no candidate id) and their progress."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .studies import study_file


@dataclass(frozen=True)
class CaseView:
    """One screen for a reader. Deliberately carries no source tag and no database ids of candidates."""

    position: int  # 1-based place in this reader's order
    total: int
    prior: Path
    text: str
    candidates: tuple[Path, ...]  # one, or two side by side (left, right)

    @property
    def progress_label(self) -> str:
        return f"Case {self.position} of {self.total}"


def progress(conn: sqlite3.Connection, reader_id: int) -> tuple[int, int]:
    """(screens fully rated, screens in total) for the reader."""
    total = conn.execute("SELECT COUNT(*) FROM slots WHERE reader_id = ?", (reader_id,)).fetchone()[0]
    return total - len(_open_positions(conn, reader_id)), total


def next_position(conn: sqlite3.Connection, reader_id: int) -> int | None:
    """The first position not yet fully rated (None when the reader has finished)."""
    open_positions = _open_positions(conn, reader_id)
    return open_positions[0] if open_positions else None


def _open_positions(conn: sqlite3.Connection, reader_id: int) -> list[int]:
    rows = conn.execute(
        """SELECT i.position FROM slot_items i
           LEFT JOIN ratings r ON r.reader_id = i.reader_id AND r.candidate_id = i.candidate_id
           WHERE i.reader_id = ? AND r.id IS NULL
           GROUP BY i.position ORDER BY i.position""",
        (reader_id,),
    ).fetchall()
    return [r["position"] for r in rows]


def case_view(conn: sqlite3.Connection, reader_id: int, position: int) -> CaseView:
    """The blinded view of one of the reader's positions."""
    slot = conn.execute(
        "SELECT c.prior_path, c.text FROM slots s JOIN cases c ON c.id = s.case_id WHERE s.reader_id = ? AND s.position = ?",
        (reader_id, position),
    ).fetchone()
    if slot is None:
        raise ValueError(f"position {position} is not part of this reader's study")
    items = conn.execute(
        """SELECT d.path FROM slot_items i JOIN candidates d ON d.id = i.candidate_id
           WHERE i.reader_id = ? AND i.position = ? ORDER BY i.side""",
        (reader_id, position),
    ).fetchall()
    total = conn.execute("SELECT COUNT(*) FROM slots WHERE reader_id = ?", (reader_id,)).fetchone()[0]
    return CaseView(
        position=position, total=total, prior=study_file(conn, slot["prior_path"]), text=slot["text"],
        candidates=tuple(study_file(conn, item["path"]) for item in items),
    )


def next_case(conn: sqlite3.Connection, reader_id: int) -> CaseView | None:
    """The reader's next case, or None when every case is rated."""
    position = next_position(conn, reader_id)
    return None if position is None else case_view(conn, reader_id, position)
