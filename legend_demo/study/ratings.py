"""Submitting ratings: validated, committed in one transaction, idempotent, immutable unless the study allows."""
from __future__ import annotations

import math
import numbers
import sqlite3
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Sequence

from .db import transaction, utc_now
from .reading import CaseView, next_case, next_position

LIKERT_ITEMS = ("realism", "faithfulness", "anatomy")
LIKERT_RANGE = (1, 5)
LESION_CHOICES = ("yes", "partly", "no")
MAX_COMMENT_CHARS = 2000
Outcome = Literal["stored", "unchanged", "updated"]


class RatingLockedError(ValueError):
    """A changed resubmission of a rating in a study that does not allow changes."""


@dataclass(frozen=True)
class Rating:
    """One reader's judgement of one candidate follow-up."""

    realism: int  # 1–5
    faithfulness: int  # 1–5: to the progression text
    anatomy: int  # 1–5: consistency with the prior
    called_synthetic: bool  # the reader's "real or synthetic?" answer
    confidence: int  # 1–5: in that answer
    lesion_location: str  # yes / partly / no
    comment: str = ""
    time_on_case_s: float = 0.0

    def __post_init__(self) -> None:
        for name in (*LIKERT_ITEMS, "confidence"):
            object.__setattr__(self, name, _likert(name, getattr(self, name)))
        if not isinstance(self.called_synthetic, (bool, int)) or self.called_synthetic not in (0, 1, True, False):
            raise ValueError(f"called_synthetic must be True or False, got {self.called_synthetic!r}")
        object.__setattr__(self, "called_synthetic", bool(self.called_synthetic))
        if self.lesion_location not in LESION_CHOICES:
            raise ValueError(f"lesion_location must be one of {', '.join(LESION_CHOICES)}, got {self.lesion_location!r}")
        comment = (self.comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment has {len(comment)} characters; keep it under {MAX_COMMENT_CHARS}")
        object.__setattr__(self, "comment", comment)
        seconds = self.time_on_case_s
        if not isinstance(seconds, numbers.Real) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"time_on_case_s must be a finite number ≥ 0, got {seconds!r}")
        object.__setattr__(self, "time_on_case_s", float(seconds))

    def judgement(self) -> dict[str, Any]:
        """The reader's answers (what must match for a resubmission to count as the same)."""
        return {k: v for k, v in asdict(self).items() if k != "time_on_case_s"}


def _likert(name: str, value: Any) -> int:
    lo, hi = LIKERT_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


_COLUMNS = tuple(f.name for f in fields(Rating))


def _stored_judgement(row: sqlite3.Row) -> dict[str, Any]:
    judgement = {name: row[name] for name in _COLUMNS if name != "time_on_case_s"}
    judgement["called_synthetic"] = bool(judgement["called_synthetic"])
    return judgement


def submit_ratings(conn: sqlite3.Connection, reader_id: int, position: int, ratings: Sequence[Rating]) -> Outcome:
    """Store the ratings of every candidate on screen `position` in one transaction (committed on return).

    Resubmitting identical answers is a no-op ("unchanged"); different answers raise RatingLockedError
    unless the study allows changes ("updated"). Only the reader's next open case or earlier ones are accepted.
    """
    ratings = list(ratings)
    with transaction(conn):
        items = conn.execute(
            "SELECT side, candidate_id FROM slot_items WHERE reader_id = ? AND position = ? ORDER BY side", (reader_id, position)
        ).fetchall()
        if not items:
            raise ValueError(f"position {position} is not part of reader {reader_id}'s study")
        if len(ratings) != len(items):
            raise ValueError(f"case {position} shows {len(items)} image(s) but {len(ratings)} rating(s) were submitted")
        upcoming = next_position(conn, reader_id)
        if upcoming is not None and position > upcoming:
            raise ValueError(f"case {position} is not open yet; case {upcoming} comes first")
        if conn.execute("SELECT 1 FROM slots s JOIN case_flags f ON f.case_id = s.case_id WHERE s.reader_id = ? AND s.position = ?",
                        (reader_id, position)).fetchone():
            raise ValueError(f"case {position} was withdrawn (flagged for the admin) and cannot be rated")
        allow_changes = bool(conn.execute("SELECT allow_changes FROM study WHERE id = 1").fetchone()[0])
        outcomes = [_store_one(conn, reader_id, position, item, rating, allow_changes) for item, rating in zip(items, ratings)]
    if "updated" in outcomes:
        return "updated"
    return "stored" if "stored" in outcomes else "unchanged"


def _store_one(conn, reader_id: int, position: int, item: sqlite3.Row, rating: Rating, allow_changes: bool) -> Outcome:
    existing = conn.execute(
        "SELECT * FROM ratings WHERE reader_id = ? AND candidate_id = ?", (reader_id, item["candidate_id"])
    ).fetchone()
    values = [getattr(rating, name) for name in _COLUMNS]
    values[_COLUMNS.index("called_synthetic")] = int(rating.called_synthetic)
    if existing is None:
        conn.execute(
            f"INSERT INTO ratings (reader_id, position, side, candidate_id, {', '.join(_COLUMNS)}, submitted_at)"
            f" VALUES (?, ?, ?, ?, {', '.join('?' * len(_COLUMNS))}, ?)",
            (reader_id, position, item["side"], item["candidate_id"], *values, utc_now()),
        )
        return "stored"
    if _stored_judgement(existing) == rating.judgement():
        return "unchanged"
    if not allow_changes:
        raise RatingLockedError(f"case {position} was already rated and this study does not allow changes")
    assignments = ", ".join(f"{name} = ?" for name in _COLUMNS)
    conn.execute(f"UPDATE ratings SET {assignments}, updated_at = ? WHERE id = ?", (*values, utc_now(), existing["id"]))
    return "updated"


def submit_and_next(conn: sqlite3.Connection, reader_id: int, position: int, ratings: Sequence[Rating]) -> CaseView | None:
    """Commit the ratings, then (only then) return the next case to show, or None when the study is done."""
    submit_ratings(conn, reader_id, position, ratings)
    return next_case(conn, reader_id)


def submit_rating(conn: sqlite3.Connection, reader_id: int, position: int, rating: Rating) -> Outcome:
    """Single-candidate convenience for submit_ratings."""
    return submit_ratings(conn, reader_id, position, [rating])
