"""Reader-study pages (Gradio): one blinded case per screen for readers, the study summary for the admin.

Served only by legend_demo.ui.study_server, which owns login and logout (an HTML form and an HttpOnly session
cookie), so no credential ever passes through a Gradio event, its API, its run history or /config. Every
handler here looks the session up on the server from that cookie and acts only for its role: a reader session
rates exactly that reader's open case; the admin view needs an admin session. A page reload resumes the session.
Readers see no source, no file name, no path and no image metadata: each case's images arrive as PNG data URLs
of one size (legend_demo.study.images); a case that cannot be shown is skipped with a neutral message and
flagged for the admin.
"""
from __future__ import annotations

import html
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..study.db import connect
from ..study.flags import flagged_cases
from ..study.images import DISPLAY_LONG_SIDE
from ..study.ratings import LESION_CHOICES, Rating, submit_ratings
from ..study.reading import next_position, progress
from ..study.screen import Screen, next_screen
from ..study.sessions import Session, SessionPolicy, find_session, mark_shown, seconds_on_case
from ..study.studies import study_settings
from ..study.summary import summarise
from .viewer import FilmViewer

LIKERT_CHOICES = [("1 (poor)", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 (excellent)", "5")]
CALL_CHOICES = [("Real", "real"), ("Synthetic", "synthetic")]
CONFIDENCE_CHOICES = [("1 (guess)", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 (certain)", "5")]
QUESTIONS = ("realism", "faithfulness", "anatomy", "real or synthetic", "confidence", "lesion location")
NOTICE = (
    "**Reader study.** Rate each follow-up radiograph against the prior and the progression text. "
    "Some follow-ups are real, some are synthetic (research use only, not for diagnosis). "
    "Your answers are saved as soon as you submit; you can close the page and continue later."
)
SESSION_ENDED = "Your session has ended. Please log in again to continue where you left off."
SKIPPED = "A case could not be shown and was skipped; the study team has been told. Please continue."
NOT_OPEN = "That case is no longer open. Here is your next case."
READERS_ONLY = "Only readers rate cases."
LOGOUT_FORM = ("<form method='post' action='logout' class='study-logout'>"
               "<button type='submit' id='study-logout'>Log out</button></form>")
STUDY_CSS = "#study-images { --lv-stage-h: 60vh; }"  # the film viewer's stage height on the study page
SCREEN_KEYS = ("message", "case_box", "done", "signed_out", "admin_box", "progress", "images", "text", "position",
               *(f"{side}_{q}" for side in ("a", "b") for q in range(6)), "comment",
               "admin_text", "admin_table", "admin_flags")
READER_KEYS = SCREEN_KEYS[:SCREEN_KEYS.index("comment") + 1]


@dataclass(frozen=True)
class StudyUI:
    """Settings the handlers need: where the study is, which cookie holds the session, how sessions expire."""

    db_path: str
    cookie_name: str
    policy: SessionPolicy
    pair_mode: bool
    long_side: int = DISPLAY_LONG_SIDE


def rating_from(values: list[Any], comment: str, seconds: float, label: str) -> Rating:
    """Rating from the six widget values; ValueError naming every unanswered question."""
    missing = [name for name, value in zip(QUESTIONS, values) if value in (None, "")]
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
    role only, no band, nothing marked synthetic; the metadata-free PNGs travel inline (nothing on disk)."""
    import cv2
    import numpy as np

    from .viewer import film_entry, png_payload, side_markers, viewer_value, window_presets  # noqa: PLC0415

    ids = ["prior", "a", "b"] if pair_mode else ["prior", "followup"]
    titles = ["Prior radiograph"] + (["Follow-up A", "Follow-up B"] if pair_mode else ["Follow-up"])
    films = [film_entry(i, title, png_payload(png)) for i, title, png in zip(ids, titles, pngs)]
    pairs = ([("prior", "a", "Prior ↔ Follow-up A"), ("prior", "b", "Prior ↔ Follow-up B"), ("a", "b", "Follow-up A ↔ B")]
             if pair_mode else [("prior", "followup", "Prior ↔ Follow-up")])
    prior01 = cv2.imdecode(np.frombuffer(pngs[0], np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return viewer_value(films, pairs, markers=side_markers({}), presets=window_presets(prior01))


class StudyScreens:
    """Event handlers returning {screen key: value}; each opens its own connection and checks the session."""

    def __init__(self, ui: StudyUI):
        self.ui = ui

    # -- sessions --------------------------------------------------------------------------------
    def _session(self, conn: sqlite3.Connection, request: gr.Request | None) -> Session | None:
        cookies = getattr(request, "cookies", None) or {}
        return find_session(conn, cookies.get(self.ui.cookie_name), self.ui.policy)

    def _with(self, request: gr.Request | None, action: Callable[[sqlite3.Connection, Session], dict]) -> dict:
        conn = connect(self.ui.db_path)
        try:
            session = self._session(conn, request)
            return signed_out(SESSION_ENDED) if session is None else action(conn, session)
        finally:
            conn.close()

    # -- events ----------------------------------------------------------------------------------
    def open(self, request: gr.Request) -> dict:
        """Page load (also after a reload): the reader's next case, the admin's summary, or the way to log in."""
        return self._with(request, lambda conn, s: self._admin_screen(conn) if s.role == "admin" else self._current(conn, s))

    def submit(self, position: Any, *values: Any, request: gr.Request) -> dict:
        """Store the ratings of the case on screen (only the session's own open case), then show the next one."""
        return self._with(request, lambda conn, s: self._submit(conn, s, position, list(values)))

    def admin(self, request: gr.Request) -> dict:
        return self._with(request, lambda conn, s: self._admin_screen(conn) if s.role == "admin" else
                          {"message": "The admin view needs the admin login."})

    # -- screens ---------------------------------------------------------------------------------
    def _current(self, conn: sqlite3.Connection, session: Session, message: str = "") -> dict:
        screen, skipped = next_screen(conn, session.reader_id, self.ui.long_side)
        message = SKIPPED if skipped else message
        if screen is None:
            return self._done(conn, session.reader_id, message)
        mark_shown(conn, session, screen.view.position)
        return case_screen(screen, self.ui.pair_mode, message)

    def _done(self, conn: sqlite3.Connection, reader_id: int, message: str) -> dict:
        done, total = progress(conn, reader_id)
        text = f"### Study complete\nYou have rated all {total} cases. Thank you — every answer is saved. You may close this page."
        return {**_blank(), "message": message, "case_box": gr.update(visible=False), "signed_out": gr.update(visible=False),
                "admin_box": gr.update(visible=False), "done": gr.update(visible=True, value=text),
                "progress": f"**{done} of {total} cases rated**"}

    def _submit(self, conn: sqlite3.Connection, session: Session, position: Any, values: list[Any]) -> dict:
        if session.role != "reader":
            return {"message": READERS_ONLY}
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            return self._current(conn, session, NOT_OPEN)
        widgets, comment = values[:12], values[12] if len(values) > 12 else ""
        sides = [widgets[:6], widgets[6:12]] if self.ui.pair_mode else [widgets[:6]]
        labels = [" for image A", " for image B"] if self.ui.pair_mode else [""]
        try:
            seconds = seconds_on_case(conn, session, position)
            ratings = [rating_from(v, comment, seconds, label) for v, label in zip(sides, labels)]
        except ValueError as exc:
            return {"message": f"⚠️ {exc}"}
        if position != next_position(conn, session.reader_id) and not study_settings(conn).allow_changes:
            message = "Already saved." if _same_as_stored(conn, session.reader_id, position, ratings) else NOT_OPEN
            return self._current(conn, session, message)
        try:
            submit_ratings(conn, session.reader_id, position, ratings)  # committed before the next case is read
        except ValueError:  # RatingLockedError, a withdrawn or unknown case: nothing is stored, nothing explained
            return self._current(conn, session, NOT_OPEN)
        return self._current(conn, session, "Saved.")

    def _admin_screen(self, conn: sqlite3.Connection) -> dict:
        summary = summarise(conn)
        rows = summary.table()
        kappa = summary.fleiss_kappa_real_vs_synthetic
        iccs = ", ".join(f"{k} {'–' if v != v else f'{v:.3f}'}" for k, v in summary.icc_2_1.items())
        text = (f"**Readers:** {summary.readers} · **ratings:** {summary.ratings} · **Turing-test accuracy:** "
                f"{summary.turing_accuracy.as_text()}  \n**Fleiss' κ** (real/synthetic): {'–' if kappa != kappa else f'{kappa:.3f}'}"
                f" · **ICC(2,1):** {iccs}  \nMeans with 95% t-intervals; accuracy with 95% Wilson intervals.  \n"
                f"{_attempts_line(conn)}")
        headers = list(rows[0]) if rows else ["source"]
        flags = flagged_cases(conn)
        flag_text = ("**Flagged cases** (skipped for every reader; fix the file, then `study flags --clear CASE`):\n"
                     + "\n".join(f"- `{f['case']}`: {f['reason']} ({f['flagged_at']})" for f in flags)) if flags else "No flagged cases."
        return {**{k: gr.skip() for k in SCREEN_KEYS}, "message": "", "case_box": gr.update(visible=False),
                "done": gr.update(visible=False), "signed_out": gr.update(visible=False),
                "admin_box": gr.update(visible=True), "admin_text": text,
                "admin_table": gr.update(value={"headers": headers, "data": [[r[h] for h in headers] for r in rows]}),
                "admin_flags": flag_text}


def case_screen(screen: Screen, pair_mode: bool, message: str = "") -> dict:
    view = screen.view
    return {**_blank(), "message": message, "case_box": gr.update(visible=True), "done": gr.update(visible=False),
            "signed_out": gr.update(visible=False), "admin_box": gr.update(visible=False),
            "progress": f"**{view.progress_label}**", "images": case_viewer(screen.pngs, pair_mode),
            "text": f"**Progression text:** {html.escape(view.text)}", "position": view.position}


def signed_out(message: str) -> dict:
    return {**_blank(), "message": message, "case_box": gr.update(visible=False), "done": gr.update(visible=False),
            "admin_box": gr.update(visible=False), "signed_out": gr.update(visible=True)}


def _blank() -> dict:
    """Reader widgets cleared (no answer carried over to the next case)."""
    blank = {k: None for k in READER_KEYS if k[:2] in ("a_", "b_")}
    return {**{k: gr.skip() for k in SCREEN_KEYS}, **blank, "comment": "", "progress": "", "images": None, "text": "",
            "position": 0}


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
def _controls(title: str, visible: bool) -> list[gr.Radio]:
    with gr.Column(visible=visible):
        gr.Markdown(f"#### {title}")
        return [
            gr.Radio(LIKERT_CHOICES, label="Realism (looks like a real chest radiograph)"),
            gr.Radio(LIKERT_CHOICES, label="Faithfulness to the progression text"),
            gr.Radio(LIKERT_CHOICES, label="Anatomical consistency with the prior"),
            gr.Radio(CALL_CHOICES, label="Real or synthetic?"),
            gr.Radio(CONFIDENCE_CHOICES, label="Confidence in that answer"),
            gr.Radio([(c.capitalize(), c) for c in LESION_CHOICES], label="Change shown at the right location?"),
        ]


def build_study_app(db_path: str | Path, cookie_name: str, policy: SessionPolicy | None = None) -> gr.Blocks:
    """The study pages for the study in `db_path`; serve them with legend_demo.ui.study_server (it logs people in)."""
    conn = connect(db_path)
    try:
        settings = study_settings(conn)
    finally:
        conn.close()
    ui = StudyUI(str(db_path), cookie_name, policy or SessionPolicy.from_env(), settings.pair_mode)
    with gr.Blocks(title="LeGend demo — reader study") as app:
        _layout(app, StudyScreens(ui), ui.pair_mode)
    app.queue(max_size=256, default_concurrency_limit=8)
    return app


def _layout(app: gr.Blocks, screens: StudyScreens, pair_mode: bool) -> None:
    gr.Markdown(NOTICE)
    parts: dict[str, Any] = {"message": gr.Markdown("", elem_id="study-message"), "position": gr.State(0)}
    with gr.Column(visible=False) as parts["signed_out"]:
        gr.HTML(f"<p>{SESSION_ENDED.split('.')[0]}. <a href='login' id='study-login-link'>Log in</a></p>", js_on_load=None)
    with gr.Column(visible=False) as parts["case_box"]:
        parts["progress"] = gr.Markdown(elem_id="study-progress")
        parts["images"] = FilmViewer(elem_id="study-images")
        parts["text"] = gr.Markdown(elem_id="study-text")
        with gr.Row():
            widgets = _controls("Image A" if pair_mode else "Your rating", True) + _controls("Image B", pair_mode)
        parts["comment"] = gr.Textbox(label="Comment (optional)", lines=2, max_length=2000)
        submit_button = gr.Button("Submit and continue", variant="primary", elem_id="study-submit")
    parts["done"] = gr.Markdown(visible=False, elem_id="study-done")
    with gr.Column(visible=False) as parts["admin_box"]:
        gr.Markdown("### Study summary (admin)")
        parts["admin_text"] = gr.Markdown(elem_id="study-admin-text")
        parts["admin_table"] = gr.Dataframe(interactive=False)
        parts["admin_flags"] = gr.Markdown(elem_id="study-admin-flags")
        admin_button = gr.Button("Refresh")
    gr.HTML(LOGOUT_FORM, js_on_load=None)
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

    app.load(on_open, None, outputs, api_name="study_screen")
    submit_button.click(on_submit, [parts["position"], *widgets, parts["comment"]], outputs, api_name="study_submit")
    admin_button.click(on_admin, None, outputs, api_name="study_admin")
