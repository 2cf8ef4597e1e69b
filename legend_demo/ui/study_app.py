"""Reader-study pages (Gradio): one blinded case per screen for readers, the study's admin page for the admin.

Served only by legend_demo.ui.study_server, which owns login and logout (an HTML form and an HttpOnly session
cookie), so no credential ever passes through a Gradio event, its API, its run history or /config. Every
handler here looks the session up on the server from that cookie and acts only for its role: a reader session
rates exactly that reader's open case; the admin page needs an admin session. A page reload resumes the session.
Readers see no source, no file name, no path and no image metadata: each case's images arrive as PNG data URLs
of one size (legend_demo.study.images); a case that cannot be shown is skipped with a neutral message and
flagged for the admin.

Reader screen (fits 1366×768 without scrolling): the films on the left, the progression text, the six questions
and Submit on the right. Answers are kept on the server as a draft while they are picked (legend_demo.study.drafts)
and the page reports the time the case was on screen in an active window (legend_demo.study.timing), both through
the StudyHelper component's server function, never a named API event.
"""
from __future__ import annotations

import hashlib
import html
import secrets
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..study.db import connect
from ..study.drafts import Draft, discard_draft, load_draft, parse_draft, save_draft
from ..study.flags import flagged_cases
from ..study.images import DISPLAY_LONG_SIDE, STUDY_LABEL
from ..study.ratings import LESION_CHOICES, Rating, submit_ratings
from ..study.reading import case_view, next_position, progress
from ..study.screen import Screen, next_screen
from ..study.sessions import Session, SessionPolicy, find_session
from ..study.studies import study_settings
from ..study.summary import METHODS_NOTE, reader_progress, summarise
from ..study.timing import IDLE_LIMIT_S, REPORT_EVERY_S, active_seconds, report_active, start_case
from .viewer import FilmViewer, static_text

SCALE_WORDS = ("poor", "fair", "acceptable", "good", "excellent")
CONFIDENCE_WORDS = ("guess", "unsure", "fairly sure", "sure", "certain")
QUESTIONS = ("realism", "faithfulness", "anatomy", "real or synthetic", "confidence", "lesion location")
QUESTION_LABELS = (
    "Realism: looks like a real chest radiograph",
    "Faithful to the progression text",
    "Anatomy consistent with the prior",
    "Real or synthetic?",
    "Confidence in that call",
    "Change shown at the right location?",
)
SESSION_ENDED = "Your session has ended. Please log in again to continue where you left off."
SKIPPED = "A case could not be shown and was skipped; the study team has been told. Please continue."
NOT_OPEN = "That case is no longer open. Here is your next case."
READERS_ONLY = "Only readers rate cases."
LOGOUT_FORM = ("<form method='post' action='logout' class='study-logout'>"
               "<button type='submit' id='study-logout'>Log out</button></form>")
STUDY_CSS = static_text("study.css")  # the study page's layout (served by study_server with the page)
SCREEN_KEYS = ("message", "case_box", "done", "signed_out", "admin_box", "progress", "images", "text", "position",
               *(f"{side}_{q}" for side in ("a", "b") for q in range(6)), "comment",
               "admin_text", "admin_table", "admin_flags",
               # appended after the original outputs, so API clients keep their indexes
               "helper", "revise", "admin_readers", "admin_answers", "admin_exports")
READER_KEYS = SCREEN_KEYS[:SCREEN_KEYS.index("comment") + 1]
WIDGET_KEYS = tuple(f"{side}_{q}" for side in ("a", "b") for q in range(6))
QUESTION_CLASSES = ["study-question"]


def choices(question: int, short: bool) -> list[tuple[str, str]]:
    """The answer buttons of a question: every scale point labelled (only the number in pair mode's narrow columns,
    where a legend above the questions names the points)."""
    if question == 3:
        return [("Real", "real"), ("Synthetic", "synthetic")]
    if question == 5:
        return [(c.capitalize(), c) for c in LESION_CHOICES]
    words = CONFIDENCE_WORDS if question == 4 else SCALE_WORDS
    return [(str(i) if short else f"{i} {w}", str(i)) for i, w in enumerate(words, start=1)]


def instructions(allow_changes: bool, pair_mode: bool) -> str:
    """The reader's instructions (shown in the case screen's "Instructions" panel)."""
    followups = "two follow-ups side by side (A and B: rate each)" if pair_mode else "a follow-up radiograph"
    revise = ("You can go back and change a submitted case with **Revise previous case**." if allow_changes else
              "**Submitted answers are final**: there is no way back to an earlier case.")
    return f"""
**What you rate.** Each case shows a *prior* chest radiograph, the *progression text* (what changed since the prior,
as a report would say it) and {followups}. A follow-up is either **real** — the reference follow-up the study team
holds: a later radiograph of the same patient (in the built-in demo study, one rendered from a CT with the change
built in) — or **synthetic**: made by an image-generation program from the prior and the text. You are never told which; judge it as you would a film.

| Question | 1 | 2 | 3 | 4 | 5 |
|---|---|---|---|---|---|
| Realism | poor: clearly not a radiograph | fair: obvious artefacts | acceptable: some artefacts | good: minor flaws | excellent: indistinguishable from a real film |
| Faithful to the text | change absent or opposite | mostly wrong | partly shown | mostly as described | exactly as described |
| Anatomy vs the prior | another patient | major differences | some differences | minor differences | same patient, same anatomy |
| Confidence in the real/synthetic call | a guess | unsure | fairly sure | sure | certain |

**Change shown at the right location?** *Yes*: the change is where the text puts it (side, zone, lobe). *Partly*:
the right area but the wrong extent, or only part of it. *No*: elsewhere, or not visible. For a change that goes
away ("interval resolution of the left effusion", "improving consolidation") judge whether the finding seen on the
prior is smaller or gone **at that place** on the follow-up. For a change without one place (an enlarging heart)
judge whether the right structure changed.

**Side markers.** *R* and *L* at the film edges mark the patient's right and left. Grey **R?** / **L?** mean the image
carries no orientation tag, so the usual display (patient's right on the image's left) is assumed, not known.

**Viewer.** Drag on a film: window (left–right) and level (up–down) · wheel: zoom · Shift-drag: pan · keys 1 2 3:
default, lung, mediastinum window · I: invert · R: reset · F: flicker between prior and follow-up. Every case opens
in the default window (presets, invert and zoom are reset).

**Your answers** are kept on the server as a draft while you pick them (they come back after a reload or a new login)
but count only when you press **Submit and continue**. {revise} Time per case is counted only while the case is on
screen in an active window.
"""


@dataclass(frozen=True)
class StudyUI:
    """Settings the handlers need: where the study is, which cookie holds the session, how sessions expire."""

    db_path: str
    cookie_name: str
    policy: SessionPolicy
    pair_mode: bool
    allow_changes: bool = False
    long_side: int = DISPLAY_LONG_SIDE


def missing_answers(values: list[Any]) -> list[int]:
    """Indexes of the questions without an answer."""
    return [i for i, value in enumerate(values) if value in (None, "")]


def rating_from(values: list[Any], comment: str, seconds: float, label: str) -> Rating:
    """Rating from the six widget values; ValueError naming every unanswered question."""
    missing = [QUESTIONS[i] for i in missing_answers(values)]
    if missing:
        raise ValueError(f"Please answer {', '.join(missing)}{label}.")
    realism, faithfulness, anatomy, call, confidence, lesion = values
    if call not in ("real", "synthetic"):
        raise ValueError(f"'real or synthetic' must be real or synthetic, got {call!r}")
    try:
        scores = [int(v) for v in (realism, faithfulness, anatomy, confidence)]
    except (TypeError, ValueError):
        raise ValueError("Please pick each score from its buttons.") from None
    return Rating(realism=scores[0], faithfulness=scores[1], anatomy=scores[2], called_synthetic=call == "synthetic",
                  confidence=scores[3], lesion_location=str(lesion), comment=comment if isinstance(comment, str) else "",
                  time_on_case_s=seconds)


def case_viewer(pngs: tuple[bytes, ...], pair_mode: bool) -> dict:
    """The case's images in the film viewer (window/level, zoom, flicker, side by side), blinded: neutral titles by
    role only, no band of the viewer's own, nothing marked synthetic; the metadata-free PNGs travel inline (nothing
    on disk). The study band at the bottom of every image stays out of window/level (fixed rows), each case opens in
    the default window, and the note explains the side markers without hovering."""
    import cv2
    import numpy as np

    from .viewer import film_entry, png_payload, side_markers, viewer_value, window_presets  # noqa: PLC0415

    ids = ["prior", "a", "b"] if pair_mode else ["prior", "followup"]
    titles = ["Prior radiograph"] + (["Follow-up A", "Follow-up B"] if pair_mode else ["Follow-up"])
    images = [cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE) for png in pngs]
    band_rows = [_study_band_rows(image) for image in images]
    films = [film_entry(i, title, {**png_payload(png), "fixed_rows": rows})
             for i, title, png, rows in zip(ids, titles, pngs, band_rows)]
    pairs = ([("prior", "a", "Prior ↔ Follow-up A"), ("prior", "b", "Prior ↔ Follow-up B"), ("a", "b", "Follow-up A ↔ B")]
             if pair_mode else [("prior", "followup", "Prior ↔ Follow-up")])
    prior01 = images[0][: images[0].shape[0] - band_rows[0]].astype(np.float32) / 255.0
    markers = side_markers({})
    note = ("R? / L?: the patient's right and left as usually displayed (the images carry no orientation tag). "
            if markers.get("assumed") else "") + "Each case opens in the default window."
    return {**viewer_value(films, pairs, markers=markers, presets=window_presets(prior01), note=note), "fresh_view": True}


def _study_band_rows(image) -> int:
    """Rows of the study label band at the bottom of a served image (0 when it carries none)."""
    import numpy as np

    band = _study_band(image.shape[1])
    rows = band.shape[0]
    return rows if rows < image.shape[0] and np.array_equal(image[-rows:], band) else 0


@lru_cache(maxsize=8)
def _study_band(width: int):
    """The study band of a served image of this width, as uint8 pixels (legend_demo.study.images draws it)."""
    import numpy as np

    from ..core.export import label_band

    return np.round(label_band(width, STUDY_LABEL) * 255).astype(np.uint8)


class StudyScreens:
    """Event handlers returning {screen key: value}; each opens its own connection and checks the session."""

    def __init__(self, ui: StudyUI):
        self.ui = ui

    # -- sessions --------------------------------------------------------------------------------
    def _session(self, conn: sqlite3.Connection, request: Any) -> Session | None:
        cookies = getattr(request, "cookies", None) or {}
        return find_session(conn, cookies.get(self.ui.cookie_name), self.ui.policy)

    def _with(self, request: Any, action: Callable[[sqlite3.Connection, Session], dict]) -> dict:
        conn = connect(self.ui.db_path)
        try:
            session = self._session(conn, request)
            return signed_out(SESSION_ENDED) if session is None else action(conn, session)
        finally:
            conn.close()

    def _reader_key(self, reader_id: int) -> str:
        """An opaque per-reader tag the page keeps with its unreported time (another login in that tab is another key)."""
        return hashlib.sha256(f"{self.ui.cookie_name}\x00{reader_id}".encode()).hexdigest()[:16]

    # -- events ----------------------------------------------------------------------------------
    def open(self, request: gr.Request) -> dict:
        """Page load (also after a reload): the reader's next case, the admin's page, or the way to log in."""
        return self._with(request, lambda conn, s: self._admin_screen(conn) if s.role == "admin" else self._current(conn, s))

    def submit(self, position: Any, *values: Any, request: gr.Request) -> dict:
        """Store the ratings of the case on screen (only the session's own open case), then show the next one."""
        return self._with(request, lambda conn, s: self._submit(conn, s, position, list(values)))

    def revise(self, position: Any, request: gr.Request) -> dict:
        """Show the rated case before `position` with its stored answers (studies that allow changes only)."""
        return self._with(request, lambda conn, s: self._revise(conn, s, position))

    def admin(self, request: gr.Request) -> dict:
        return self._with(request, lambda conn, s: self._admin_screen(conn) if s.role == "admin" else
                          {"message": "The admin view needs the admin login."})

    def report(self, payload: Any, request: Any) -> dict:
        """The page's report (StudyHelper server function): active seconds on the open case and/or its draft.
        Answers {"time": accepted seconds, "draft": kept?}; nothing for anyone but the reader of that case."""
        conn = connect(self.ui.db_path)
        try:
            session = self._session(conn, request)
            if session is None or session.role != "reader" or not isinstance(payload, dict):
                return {"time": 0.0, "draft": False}
            position = payload.get("position")
            if isinstance(position, bool) or not isinstance(position, int):
                return {"time": 0.0, "draft": False}
            answer = {"time": 0.0, "draft": False}
            seconds = payload.get("seconds")
            if seconds is not None:
                try:
                    answer["time"] = report_active(conn, session.reader_id, position, seconds,
                                                   report_id=payload.get("id"))
                except ValueError:
                    pass
            if "draft" in payload:
                try:
                    answer["draft"] = save_draft(conn, session.reader_id, position, parse_draft(payload["draft"]))
                except ValueError:
                    pass
            return answer
        finally:
            conn.close()

    # -- screens ---------------------------------------------------------------------------------
    def _current(self, conn: sqlite3.Connection, session: Session, message: str = "", event: str = "case",
                 saved_number: int = 0) -> dict:
        screen, skipped = next_screen(conn, session.reader_id, self.ui.long_side)
        message = SKIPPED if skipped else message
        if screen is None:
            return self._done(conn, session.reader_id, message, event)
        position = screen.view.position
        start_case(conn, session.reader_id, position)
        draft = load_draft(conn, session.reader_id, position)
        result = case_screen(screen, self.ui.pair_mode, message, draft)
        return {**result, "revise": gr.update(visible=self._can_revise(conn, session.reader_id, position)),
                "helper": self._helper(session.reader_id, position, event, screen, saved_number, draft)}

    def _helper(self, reader_id: int, position: int, event: str, screen: Screen | None = None, saved_number: int = 0,
                draft: Draft | None = None) -> dict:
        note = ""
        if draft is not None and not draft.is_empty():
            note = f"Your draft answers from {draft.updated_at[11:16]} UTC are filled in (kept on the server)."
        view = screen.view if screen else None
        return {"position": position, "key": self._reader_key(reader_id), "event": event,
                "number": view.number if view else 0, "total": view.total if view else 0, "saved_number": saved_number,
                "idle_s": IDLE_LIMIT_S, "report_s": REPORT_EVERY_S, "draft": note, "nonce": secrets.token_hex(4)}

    def _can_revise(self, conn: sqlite3.Connection, reader_id: int, position: int) -> bool:
        return self.ui.allow_changes and _rated_before(conn, reader_id, position) is not None

    def _done(self, conn: sqlite3.Connection, reader_id: int, message: str, event: str = "case") -> dict:
        done, total = progress(conn, reader_id)
        text = f"### Study complete\nYou have rated all {total} cases. Thank you — every answer is saved. You may close this page."
        return {**_blank(), "message": message, "case_box": gr.update(visible=False), "signed_out": gr.update(visible=False),
                "admin_box": gr.update(visible=False), "done": gr.update(visible=True, value=text),
                "progress": f"**{done} of {total} cases rated**",
                "helper": self._helper(reader_id, 0, "done" if event == "saved" else event)}

    def _submit(self, conn: sqlite3.Connection, session: Session, position: Any, values: list[Any]) -> dict:
        if session.role != "reader":
            return {"message": READERS_ONLY}
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            return self._current(conn, session, NOT_OPEN)
        widgets, comment = values[:12], values[12] if len(values) > 12 else ""
        sides = [widgets[:6], widgets[6:12]] if self.ui.pair_mode else [widgets[:6]]
        labels = [" for image A", " for image B"] if self.ui.pair_mode else [""]
        missing = {f"{side}_{q}" for side, values_ in zip("ab", sides) for q in missing_answers(values_)}
        if missing:
            message = "⚠️ " + " ".join(_missing_text(v, label) for v, label in zip(sides, labels) if missing_answers(v))
            return {"message": message, **self._marks(missing), "helper": self._helper(session.reader_id, position, "missing")}
        try:
            seconds = active_seconds(conn, session.reader_id, position)
            ratings = [rating_from(v, comment, seconds, label) for v, label in zip(sides, labels)]
        except ValueError as exc:
            return {"message": f"⚠️ {exc}"}
        upcoming = next_position(conn, session.reader_id)
        if position != upcoming and not study_settings(conn).allow_changes:
            message = "Already saved." if _same_as_stored(conn, session.reader_id, position, ratings) else NOT_OPEN
            return self._current(conn, session, message)
        try:
            submit_ratings(conn, session.reader_id, position, ratings)  # committed before the next case is read
        except ValueError:  # RatingLockedError, a withdrawn or unknown case: nothing is stored, nothing explained
            return self._current(conn, session, NOT_OPEN)
        discard_draft(conn, session.reader_id, position)
        saved_number = _number_of(conn, session.reader_id, position)
        return self._current(conn, session, "Saved." if position == upcoming else "Change saved.", "saved", saved_number)

    def _marks(self, missing: set[str]) -> dict:
        """Each unanswered question marked where it is (outline, and ⚠ before its label: static/study.css);
        answered ones unmarked. Only classes travel: no label text, nothing that could echo a source name."""
        return {key: gr.update(elem_classes=QUESTION_CLASSES + (["study-missing"] if key in missing else []))
                for key in WIDGET_KEYS}

    def _revise(self, conn: sqlite3.Connection, session: Session, position: Any) -> dict:
        if session.role != "reader" or not self.ui.allow_changes:
            return {"message": READERS_ONLY if session.role != "reader" else "This study does not allow changes."}
        if isinstance(position, bool) or not isinstance(position, int):
            return self._current(conn, session)
        earlier = _rated_before(conn, session.reader_id, position)
        if earlier is None:
            return self._current(conn, session, "There is no earlier case to revise.")
        from ..study.images import case_pngs

        view = case_view(conn, session.reader_id, earlier)
        screen = Screen(view, tuple(case_pngs([view.prior, *view.candidates], self.ui.long_side)))
        stored = _stored_answers(conn, session.reader_id, earlier)
        number = _number_of(conn, session.reader_id, earlier)
        result = case_screen(screen, self.ui.pair_mode, f"Revising case {number}: your submitted answers are filled in; "
                             "Submit saves the change and brings you back.", stored)
        return {**result, "progress": f"**Revising case {number}**",
                "revise": gr.update(visible=_rated_before(conn, session.reader_id, earlier) is not None),
                "helper": {**self._helper(session.reader_id, 0, "case"), "position": 0}}

    def _admin_screen(self, conn: sqlite3.Connection) -> dict:
        summary = summarise(conn)
        rows, answers, readers = summary.table(), summary.answers_table(), reader_progress(conn)
        kappa = summary.fleiss_kappa_real_vs_synthetic
        iccs = ", ".join(f"{k} {'–' if v != v else f'{v:.3f}'}" for k, v in summary.icc_2_1.items())
        text = (f"**Readers:** {summary.readers} · **ratings:** {summary.ratings} · **Turing-test accuracy:** "
                f"{summary.turing_accuracy.as_text(with_n=True)}  \n**Fleiss' κ** (real/synthetic, "
                f"{summary.agreement_candidates} images read by every reader): {'–' if kappa != kappa else f'{kappa:.3f}'}"
                f" · **ICC(2,1):** {iccs}  \n{_attempts_line(conn)}  \n<small>{METHODS_NOTE}</small>")
        flags = flagged_cases(conn)
        flag_text = ("**Flagged cases** (skipped for every reader; fix the file, then `study flags --clear CASE`):\n"
                     + "\n".join(f"- `{f['case']}`: {f['reason']} ({f['flagged_at']})" for f in flags)) if flags else "No flagged cases."
        return {**{k: gr.skip() for k in SCREEN_KEYS}, "message": "", "case_box": gr.update(visible=False),
                "done": gr.update(visible=False), "signed_out": gr.update(visible=False),
                "admin_box": gr.update(visible=True), "admin_text": text,
                "admin_table": _table(rows, ["source"]), "admin_answers": _table(answers, ["source"]),
                "admin_readers": _table(readers, ["reader"]), "admin_flags": flag_text,
                "admin_exports": export_links(summary.ratings), "helper": {"position": 0, "key": "", "event": "admin"}}


def _table(rows: list[dict], empty_headers: list[str]) -> Any:
    headers = list(rows[0]) if rows else empty_headers
    return gr.update(value={"headers": headers, "data": [[r[h] for h in headers] for r in rows]})


def export_links(ratings: int) -> str:
    """The admin's downloads (served by legend_demo.ui.study_exports behind the admin session)."""
    return (
        "<div id='study-exports'><b>Exports</b> (unblinded: keep them to the study team) "
        "<a href='admin/export/ratings.csv' download id='export-csv'>Ratings CSV</a>"
        "<a href='admin/export/vtt.imrmc' download id='export-imrmc'>iMRMC input (.imrmc)</a>"
        "<a href='admin/export/vtt.key.csv' download id='export-imrmc-key'>iMRMC key (ids → readers, images)</a>"
        f"<span class='study-note'>{ratings} rating{'s' if ratings != 1 else ''}; made fresh on every click.</span></div>"
    )


def _missing_text(values: list[Any], label: str) -> str:
    names = [QUESTIONS[i] for i in missing_answers(values)]
    return f"Please answer {', '.join(names)}{label}."


def case_screen(screen: Screen, pair_mode: bool, message: str = "", draft: Draft | None = None) -> dict:
    view = screen.view
    values = _blank()
    if draft is not None:
        values.update({f"a_{q}": v for q, v in enumerate(draft.a)})
        values.update({f"b_{q}": v for q, v in enumerate(draft.b)})
        values["comment"] = draft.comment
    unmarked = {k: gr.update(value=values[k], elem_classes=QUESTION_CLASSES) for k in WIDGET_KEYS}
    return {**values, **unmarked, "message": message, "case_box": gr.update(visible=True), "done": gr.update(visible=False),
            "signed_out": gr.update(visible=False), "admin_box": gr.update(visible=False),
            "progress": f"**{view.progress_label}**", "images": case_viewer(screen.pngs, pair_mode),
            "text": f"**Progression text:** {html.escape(view.text)}", "position": view.position}


def signed_out(message: str) -> dict:
    return {**_blank(), "message": message, "case_box": gr.update(visible=False), "done": gr.update(visible=False),
            "admin_box": gr.update(visible=False), "signed_out": gr.update(visible=True),
            "helper": {"position": 0, "key": "", "event": "signed_out"}}


def _blank() -> dict:
    """Reader widgets cleared (no answer carried over to the next case)."""
    blank = {k: None for k in WIDGET_KEYS}
    return {**{k: gr.skip() for k in SCREEN_KEYS}, **blank, "comment": "", "progress": "", "images": None, "text": "",
            "position": 0}


def _rated_before(conn: sqlite3.Connection, reader_id: int, position: int) -> int | None:
    row = conn.execute("SELECT MAX(position) FROM ratings WHERE reader_id = ? AND position < ?", (reader_id, position)).fetchone()
    return row[0]


def _number_of(conn: sqlite3.Connection, reader_id: int, position: int) -> int:
    """The 1-based number the reader saw for `position` (rated cases up to it, withdrawn ones not counted)."""
    return conn.execute("SELECT COUNT(DISTINCT position) FROM ratings WHERE reader_id = ? AND position <= ?",
                        (reader_id, position)).fetchone()[0]


def _stored_answers(conn: sqlite3.Connection, reader_id: int, position: int) -> Draft:
    rows = conn.execute("SELECT * FROM ratings WHERE reader_id = ? AND position = ? ORDER BY side", (reader_id, position)).fetchall()
    sides = [tuple([str(r["realism"]), str(r["faithfulness"]), str(r["anatomy"]),
                    "synthetic" if r["called_synthetic"] else "real", str(r["confidence"]), r["lesion_location"]])
             for r in rows]
    return Draft(sides[0], sides[1] if len(sides) > 1 else (None,) * 6, rows[0]["comment"] if rows else "")


def _same_as_stored(conn: sqlite3.Connection, reader_id: int, position: int, ratings: list[Rating]) -> bool:
    rows = conn.execute(
        """SELECT r.* FROM ratings r JOIN slot_items i ON i.reader_id = r.reader_id AND i.candidate_id = r.candidate_id
           WHERE r.reader_id = ? AND i.position = ? ORDER BY i.side""", (reader_id, position)).fetchall()
    stored = [{k: (bool(r[k]) if k == "called_synthetic" else r[k]) for k in ratings[0].judgement()} for r in rows]
    return len(rows) == len(ratings) and stored == [r.judgement() for r in ratings]


def _attempts_line(conn: sqlite3.Connection) -> str:
    counts = dict(conn.execute("SELECT outcome, COUNT(*) FROM login_attempts WHERE at >= strftime('%s', 'now') - 86400 "
                               "GROUP BY outcome").fetchall())
    return (f"**Logins in the last 24 h:** {counts.get('ok', 0)} ok · {counts.get('failed', 0)} failed · "
            f"{counts.get('refused', 0)} refused while locked")


# -- layout ----------------------------------------------------------------------------------------
class StudyHelper(gr.HTML):
    """The page's helper (static/study.js): time per case, drafts, scrolling to the next case or the missing answers,
    the draft line under Submit, and the way back to the login form. Value: StudyScreens._helper."""

    def __init__(self, report: Callable[..., dict], **kwargs: Any):
        super().__init__(value=None, html_template="<div class='study-helper'><span class='study-draft-state'></span></div>",
                         js_on_load=static_text("study.js"), apply_default_css=False, server_functions=[report], **kwargs)

    def api_info(self) -> dict[str, Any]:
        return {"type": "object", "description": "study page helper state (output only)"}


def _controls(title: str, visible: bool, short: bool, side: str) -> list[gr.Radio]:
    with gr.Column(visible=visible, elem_classes=["study-side"], min_width=150):
        if title:
            gr.Markdown(f"**{title}**", elem_classes=["study-side-title"])
        return [gr.Radio(choices(q, short), label=QUESTION_LABELS[q], elem_id=f"study-q-{side}-{q}",
                         elem_classes=QUESTION_CLASSES) for q in range(6)]


def build_study_app(db_path: str | Path, cookie_name: str, policy: SessionPolicy | None = None) -> gr.Blocks:
    """The study pages for the study in `db_path`; serve them with legend_demo.ui.study_server (it logs people in)."""
    conn = connect(db_path)
    try:
        settings = study_settings(conn)
    finally:
        conn.close()
    ui = StudyUI(str(db_path), cookie_name, policy or SessionPolicy.from_env(), settings.pair_mode, settings.allow_changes)
    from ..grounding import lung_fields, orientation  # noqa: F401,PLC0415 - loaded now, not on the first reader's screen
    with gr.Blocks(title=f"Reader study — {settings.name}", fill_width=True) as app:
        _layout(app, StudyScreens(ui), ui)
    app.queue(max_size=256, default_concurrency_limit=8)
    return app


def _layout(app: gr.Blocks, screens: StudyScreens, ui: StudyUI) -> None:
    pair_mode = ui.pair_mode
    parts: dict[str, Any] = {"position": gr.State(0)}

    def study_report(payload: Any, request: gr.Request = None) -> dict:  # noqa: RUF013 - gradio injects the request
        return screens.report(payload, request)

    with gr.Column(visible=False, elem_id="study-signed-out") as parts["signed_out"]:
        gr.HTML(f"<p>{SESSION_ENDED.split('.')[0]}. <a href='login' id='study-login-link'>Log in</a></p>", js_on_load=None)
    with gr.Column(visible=False, elem_id="study-case") as parts["case_box"]:
        with gr.Row(elem_id="study-header", equal_height=True):
            gr.HTML("<div id='study-title'><b>Reader study</b> <span>research use — some follow-ups are SYNTHETIC; "
                    "not for diagnosis</span></div>", js_on_load=None)
            parts["progress"] = gr.Markdown(elem_id="study-progress")
            with gr.Accordion("Instructions", open=False, elem_id="study-instructions"):
                gr.Markdown(instructions(ui.allow_changes, pair_mode))
            gr.HTML(LOGOUT_FORM, js_on_load=None, elem_id="study-logout-box")
        with gr.Row(elem_id="study-body"):
            with gr.Column(scale=3, min_width=420, elem_id="study-films"):
                parts["images"] = FilmViewer(elem_id="study-images")
            with gr.Column(scale=2, min_width=340, elem_id="study-answers"):
                parts["text"] = gr.Markdown(elem_id="study-text")
                if pair_mode:
                    gr.Markdown("Scores: 1 poor · 2 fair · 3 acceptable · 4 good · 5 excellent; confidence: 1 guess … 5 certain",
                                elem_classes=["study-legend"])
                with gr.Row(elem_id="study-questions"):
                    widgets = (_controls("Follow-up A" if pair_mode else "", True, pair_mode, "a")
                               + _controls("Follow-up B", pair_mode, pair_mode, "b"))
                parts["comment"] = gr.Textbox(label="Comment (optional)", lines=1, max_lines=3, max_length=2000,
                                              elem_id="study-comment")
                parts["message"] = gr.Markdown("", elem_id="study-message")
                with gr.Row(elem_id="study-actions"):
                    parts["revise"] = gr.Button("← Revise previous case", visible=False, elem_id="study-revise",
                                                size="sm", scale=0)
                    submit_button = gr.Button("Submit and continue", variant="primary", elem_id="study-submit", scale=1)
                parts["helper"] = StudyHelper(study_report, elem_id="study-helper")
                gr.Markdown("You can revise a submitted case with “Revise previous case”." if ui.allow_changes else
                            "Submitted answers are final: there is no way back to an earlier case.",
                            elem_classes=["study-note"])
    parts["done"] = gr.Markdown(visible=False, elem_id="study-done")
    with gr.Column(visible=False, elem_id="study-admin") as parts["admin_box"]:
        with gr.Row(elem_id="study-admin-header"):
            gr.Markdown("### Study admin", elem_id="study-admin-title")
            admin_button = gr.Button("Refresh", size="sm", scale=0, elem_id="study-admin-refresh")
            gr.HTML(LOGOUT_FORM, js_on_load=None)
        parts["admin_exports"] = gr.HTML(elem_id="study-admin-exports", js_on_load=None)
        parts["admin_text"] = gr.Markdown(elem_id="study-admin-text")
        gr.Markdown("#### Readers: progress")
        parts["admin_readers"] = gr.Dataframe(interactive=False, elem_id="study-admin-readers", wrap=True)
        gr.Markdown("#### Per source: Likert means and real/synthetic accuracy")
        parts["admin_table"] = gr.Dataframe(interactive=False, elem_id="study-admin-table", wrap=True)
        gr.Markdown("#### Per source: confidence, lesion location, time per case")
        parts["admin_answers"] = gr.Dataframe(interactive=False, elem_id="study-admin-answers", wrap=True)
        parts["admin_flags"] = gr.Markdown(elem_id="study-admin-flags")
    for side, group in (("a", widgets[:6]), ("b", widgets[6:])):
        parts.update({f"{side}_{q}": w for q, w in enumerate(group)})
    outputs = [parts[k] for k in SCREEN_KEYS]

    def as_outputs(result: dict) -> tuple:
        return tuple(result.get(k, gr.skip()) for k in SCREEN_KEYS)

    def on_open(request: gr.Request):
        return as_outputs(screens.open(request))

    def on_submit(request: gr.Request, position, *values):  # gradio injects the request into the first slot
        return as_outputs(screens.submit(position, *values, request=request))

    def on_admin(request: gr.Request):
        return as_outputs(screens.admin(request))

    def on_revise(request: gr.Request, position):
        return as_outputs(screens.revise(position, request=request))

    quiet = {"show_progress": "minimal", "show_progress_on": [parts["message"]]}  # one small spinner, not a veil
    app.load(on_open, None, outputs, api_name="study_screen")
    submit_button.click(on_submit, [parts["position"], *widgets, parts["comment"]], outputs, api_name="study_submit",
                        js="async (...args) => { if (window.LegendStudy) await window.LegendStudy.beforeSubmit(); "
                           "return args; }", **quiet)
    admin_button.click(on_admin, None, outputs, api_name="study_admin", **quiet)
    if ui.allow_changes:
        parts["revise"].click(on_revise, [parts["position"]], outputs, api_name="study_revise", **quiet)
