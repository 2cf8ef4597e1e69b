"""A reader's unsubmitted answers to their open case, kept on the server as they pick them, so a reload, a closed
tab or a new login brings them back. A draft is never a rating: it counts for nothing until the reader submits,
and it is deleted once the case is rated."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .db import transaction, utc_now
from .ratings import LESION_CHOICES, MAX_COMMENT_CHARS
from .reading import next_position

SCORES = ("1", "2", "3", "4", "5")
QUESTION_VALUES: tuple[tuple[str, ...], ...] = (  # the six questions in screen order: what each answer may be
    SCORES, SCORES, SCORES, ("real", "synthetic"), SCORES, LESION_CHOICES,
)
SIDES = ("a", "b")


@dataclass(frozen=True)
class Draft:
    """Answers per side ("a", and "b" in pair mode): six values or None each, and the comment."""

    a: tuple[str | None, ...] = (None,) * 6
    b: tuple[str | None, ...] = (None,) * 6
    comment: str = ""
    updated_at: str | None = field(default=None, compare=False)

    def is_empty(self) -> bool:
        return all(v is None for v in (*self.a, *self.b)) and not self.comment.strip()

    def to_json(self) -> str:
        return json.dumps({"a": list(self.a), "b": list(self.b), "comment": self.comment})


def parse_draft(data: Any) -> Draft:
    """A Draft from what a page sends ({"a": [...6], "b": [...6], "comment": "..."}); ValueError on anything else."""
    if not isinstance(data, dict):
        raise ValueError("a draft must be an object with answers per side")
    sides = {}
    for side in SIDES:
        values = data.get(side, [None] * 6)
        if not isinstance(values, (list, tuple)) or len(values) != len(QUESTION_VALUES):
            raise ValueError(f"draft side {side!r} must list {len(QUESTION_VALUES)} answers")
        checked = []
        for value, allowed in zip(values, QUESTION_VALUES):
            if value in (None, ""):
                checked.append(None)
            elif isinstance(value, str) and value in allowed:
                checked.append(value)
            else:
                raise ValueError(f"draft answer {value!r} is not one of {', '.join(allowed)}")
        sides[side] = tuple(checked)
    comment = data.get("comment", "") or ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"a draft comment must be text of at most {MAX_COMMENT_CHARS} characters")
    return Draft(sides["a"], sides["b"], comment)


def save_draft(conn: sqlite3.Connection, reader_id: int, position: int, draft: Draft) -> bool:
    """Keep `draft` for the reader's open case `position`; False (nothing stored) for any other position."""
    with transaction(conn):
        if position != next_position(conn, reader_id):
            return False
        if draft.is_empty():
            conn.execute("DELETE FROM drafts WHERE reader_id = ? AND position = ?", (reader_id, position))
            return True
        conn.execute(
            """INSERT INTO drafts (reader_id, position, answers, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (reader_id, position) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at""",
            (reader_id, position, draft.to_json(), utc_now()),
        )
    return True


def load_draft(conn: sqlite3.Connection, reader_id: int, position: int) -> Draft | None:
    """The kept draft of that case, or None (a damaged one is treated as none)."""
    row = conn.execute("SELECT answers, updated_at FROM drafts WHERE reader_id = ? AND position = ?",
                       (reader_id, position)).fetchone()
    if row is None:
        return None
    try:
        draft = parse_draft(json.loads(row["answers"]))
    except (ValueError, TypeError):
        return None
    return Draft(draft.a, draft.b, draft.comment, row["updated_at"])


def discard_draft(conn: sqlite3.Connection, reader_id: int, position: int) -> None:
    """Forget the draft of a case (after its ratings were committed)."""
    if not conn.execute("SELECT 1 FROM drafts WHERE reader_id = ? AND position = ?", (reader_id, position)).fetchone():
        return
    with transaction(conn):
        conn.execute("DELETE FROM drafts WHERE reader_id = ? AND position = ?", (reader_id, position))
