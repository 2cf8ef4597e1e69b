"""The next screen of a reader's session, rendered for blinding: every image of the case as metadata-free PNG
bytes at one size (legend_demo.study.images). A case whose image cannot be decoded is flagged and skipped."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from ..core.errors import ImageInputError
from .flags import flag_case
from .images import DISPLAY_LONG_SIDE, case_pngs
from .reading import CaseView, next_case


@dataclass(frozen=True)
class Screen:
    view: CaseView
    pngs: tuple[bytes, ...]  # prior first, then the candidate(s) left to right; all the same size


def next_screen(conn: sqlite3.Connection, reader_id: int, long_side: int = DISPLAY_LONG_SIDE) -> tuple[Screen | None, int]:
    """(the reader's next screen or None when done, how many cases were skipped on the way)."""
    skipped = 0
    while (view := next_case(conn, reader_id)) is not None:
        skipped += view.skipped
        try:
            pngs = case_pngs([view.prior, *view.candidates], long_side)
        except (ImageInputError, OSError, ValueError) as exc:
            case_id = conn.execute("SELECT case_id FROM slots WHERE reader_id = ? AND position = ?",
                                   (reader_id, view.position)).fetchone()[0]
            flag_case(conn, case_id, f"an image of the case cannot be read ({exc})")
            skipped += 1
            continue
        return Screen(replace(view, skipped=skipped), tuple(pngs)), skipped
    return None, skipped
