"""Reader-study mode: login, one blinded case per screen, ratings committed before the next case, an admin tab.

All state lives in the study database (legend_demo.study); the browser keeps only a session token
(gr.BrowserState), so a reader who closes the tab resumes exactly at their next unrated case.
Readers see no sources, no file names, no image metadata (images are sent as fresh pixel arrays) and no
other reader's ratings.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..study.db import connect
from ..study.images import read_gray
from ..study.passwords import verify_password
from ..study.ratings import LESION_CHOICES, Rating, RatingLockedError, submit_ratings
from ..study.readers import authenticate
from ..study.reading import CaseView, next_case, progress
from ..study.sessions import close_session, mark_shown, open_session, seconds_on_case, session_reader
from ..study.studies import study_settings
from ..study.summary import summarise

ADMIN_PASSWORD_ENV = "LEGEND_STUDY_ADMIN_PASSWORD"
LIKERT_CHOICES = [("1 (poor)", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 (excellent)", "5")]
CALL_CHOICES = [("Real", "real"), ("Synthetic", "synthetic")]
CONFIDENCE_CHOICES = [("1 (guess)", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 (certain)", "5")]
NOTICE = (
    "**Reader study.** Rate each follow-up radiograph against the prior and the progression text. "
    "Some follow-ups are real, some are synthetic (research use only, not for diagnosis). "
    "Your answers are saved as soon as you submit; you can close the page and continue later."
)
BAD_LOGIN = "Unknown reader name or wrong password. Please check both and try again."
SESSION_ENDED = "Your session has ended. Please log in again to continue where you left off."


@dataclass
class Controls:
    """The rating widgets for one displayed candidate."""

    realism: gr.Radio
    faithfulness: gr.Radio
    anatomy: gr.Radio
    call: gr.Radio
    confidence: gr.Radio
    lesion: gr.Radio

    def widgets(self) -> list[gr.Radio]:
        return [self.realism, self.faithfulness, self.anatomy, self.call, self.confidence, self.lesion]


def _controls(title: str, visible: bool) -> tuple[gr.Column, Controls]:
    with gr.Column(visible=visible) as column:
        gr.Markdown(f"#### {title}")
        controls = Controls(
            realism=gr.Radio(LIKERT_CHOICES, label="Realism (looks like a real chest radiograph)"),
            faithfulness=gr.Radio(LIKERT_CHOICES, label="Faithfulness to the progression text"),
            anatomy=gr.Radio(LIKERT_CHOICES, label="Anatomical consistency with the prior"),
            call=gr.Radio(CALL_CHOICES, label="Real or synthetic?"),
            confidence=gr.Radio(CONFIDENCE_CHOICES, label="Confidence in that answer"),
            lesion=gr.Radio([(c.capitalize(), c) for c in LESION_CHOICES], label="Change shown at the right location?"),
        )
    return column, controls


def _rating_from(values: list[Any], comment: str, seconds: float, label: str) -> Rating:
    """Rating from the six widget values; ValueError naming every unanswered question."""
    names = ["realism", "faithfulness", "anatomy", "real or synthetic", "confidence", "lesion location"]
    missing = [name for name, value in zip(names, values) if value in (None, "")]
    if missing:
        raise ValueError(f"Please answer {', '.join(missing)}{label}.")
    realism, faithfulness, anatomy, call, confidence, lesion = values
    if call not in ("real", "synthetic"):
        raise ValueError(f"'real or synthetic' must be real or synthetic, got {call!r}")
    return Rating(
        realism=int(realism), faithfulness=int(faithfulness), anatomy=int(anatomy), called_synthetic=call == "synthetic",
        confidence=int(confidence), lesion_location=str(lesion), comment=comment or "", time_on_case_s=seconds,
    )


def _pixels(path: Path) -> np.ndarray:
    """uint8 pixels only: gradio re-encodes them under a hashed name, so no file name or metadata reaches the reader."""
    return np.round(read_gray(path) * 255.0).astype(np.uint8)


class StudyScreens:
    """Event handlers; each returns values for `outputs` (see build_study_app) and opens its own connection."""

    def __init__(self, db_path: str, pair_mode: bool):
        self.db_path = db_path
        self.pair_mode = pair_mode

    # -- screens ---------------------------------------------------------------------------------
    def _blank_controls(self) -> list[Any]:
        return [None] * 12 + [""]

    def login_screen(self, message: str = "") -> tuple:
        return (message, gr.update(visible=True), gr.update(visible=False), gr.update(visible=False, value=""), "",
                None, None, None, "", 0, "", "", *self._blank_controls())

    def case_screen(self, conn, token: str, view: CaseView, message: str = "") -> tuple:
        mark_shown(conn, token, view.position)
        images = [_pixels(p) for p in view.candidates] + [None]
        return (message, gr.update(visible=False), gr.update(visible=True), gr.update(visible=False, value=""),
                f"**{view.progress_label}**", _pixels(view.prior), images[0], images[1],
                f"**Progression text:** {view.text}", view.position, token, token, *self._blank_controls())

    def done_screen(self, conn, reader_id: int, token: str) -> tuple:
        done, total = progress(conn, reader_id)
        text = f"### Study complete\nYou have rated all {total} cases. Thank you — every answer is saved. You may close this page."
        return ("", gr.update(visible=False), gr.update(visible=False), gr.update(visible=True, value=text),
                f"**{done} of {total} cases rated**", None, None, None, "", 0, token, token, *self._blank_controls())

    def _current(self, conn, reader_id: int, token: str, message: str = "") -> tuple:
        view = next_case(conn, reader_id)
        return self.done_screen(conn, reader_id, token) if view is None else self.case_screen(conn, token, view, message)

    # -- events ----------------------------------------------------------------------------------
    def login(self, name: str, password: str) -> tuple:
        conn = connect(self.db_path)
        try:
            reader_id = authenticate(conn, name, password)
            if reader_id is None:
                return self.login_screen(BAD_LOGIN)
            token = open_session(conn, reader_id)
            return self._current(conn, reader_id, token)
        finally:
            conn.close()

    def resume(self, token: str | None) -> tuple:
        conn = connect(self.db_path)
        try:
            reader_id = session_reader(conn, token)
            return self.login_screen() if reader_id is None else self._current(conn, reader_id, token)
        finally:
            conn.close()

    def submit(self, token: str, position: int, *values: Any) -> tuple:
        conn = connect(self.db_path)
        try:
            reader_id = session_reader(conn, token)
            if reader_id is None:
                return self.login_screen(SESSION_ENDED)
            comment, widgets = values[-1], list(values[:-1])
            try:
                seconds = seconds_on_case(conn, token, int(position))
                sides = [widgets[:6], widgets[6:12]] if self.pair_mode else [widgets[:6]]
                labels = [" for image A", " for image B"] if self.pair_mode else [""]
                ratings = [_rating_from(v, comment, seconds, label) for v, label in zip(sides, labels)]
                submit_ratings(conn, reader_id, int(position), ratings)  # committed before the next case is read
            except RatingLockedError as exc:
                return self._current(conn, reader_id, token, str(exc))
            except ValueError as exc:
                return (f"⚠️ {exc}",) + tuple(gr.skip() for _ in range(11 + 13))
            return self._current(conn, reader_id, token, "Saved.")
        finally:
            conn.close()

    def logout(self, token: str) -> tuple:
        conn = connect(self.db_path)
        try:
            close_session(conn, token)
        finally:
            conn.close()
        return self.login_screen("You are logged out. Your ratings are saved.")

    def admin(self, password: str) -> tuple[str, Any]:
        conn = connect(self.db_path)
        try:
            if not _admin_ok(conn, password):
                return "Wrong admin password (or none configured for this study).", gr.update(value=None, visible=False)
            summary = summarise(conn)
        finally:
            conn.close()
        rows = summary.table()
        kappa = summary.fleiss_kappa_real_vs_synthetic
        iccs = ", ".join(f"{k} {'–' if v != v else f'{v:.3f}'}" for k, v in summary.icc_2_1.items())
        text = (f"**Readers:** {summary.readers} · **ratings:** {summary.ratings} · **Turing-test accuracy:** "
                f"{summary.turing_accuracy.as_text()}  \n**Fleiss' κ** (real/synthetic): {'–' if kappa != kappa else f'{kappa:.3f}'}"
                f" · **ICC(2,1):** {iccs}  \nMeans with 95% t-intervals; accuracy with 95% Wilson intervals.")
        headers = list(rows[0]) if rows else ["source"]
        table = {"headers": headers, "data": [[r[h] for h in headers] for r in rows]}
        return text, gr.update(value=table, visible=True)


def _admin_ok(conn, password: str | None) -> bool:
    """The admin password set at `study create`, else the LEGEND_STUDY_ADMIN_PASSWORD environment variable."""
    if not password:
        return False
    stored = conn.execute("SELECT admin_password_hash FROM study WHERE id = 1").fetchone()[0]
    if stored:
        return verify_password(password, stored)
    env = os.environ.get(ADMIN_PASSWORD_ENV, "")
    return bool(env) and hmac.compare_digest(password.encode(), env.encode())


def _browser_state(conn, db_path: str) -> gr.BrowserState:
    """Token storage whose key and secret come from the database, so a token survives a server restart."""
    secret = conn.execute("SELECT ui_secret FROM study WHERE id = 1").fetchone()[0]
    key = "legend-study-" + hashlib.sha256(f"{Path(db_path).resolve()}:{secret}".encode()).hexdigest()[:16]
    return gr.BrowserState("", storage_key=key, secret=secret)


def build_study_app(db_path: str | Path) -> gr.Blocks:
    """A stand-alone reader-study app for the study in `db_path` (launch it with .launch())."""
    with gr.Blocks(title="LeGend demo — reader study") as app:
        add_study_ui(db_path, app)
    return app


def add_study_ui(db_path: str | Path, app: gr.Blocks) -> None:
    """Build the reader-study tabs into the open `with gr.Blocks() as app:` context (e.g. inside a gr.Tab)."""
    db_path = str(db_path)
    conn = connect(db_path)
    try:
        settings = study_settings(conn)
        token_store = _browser_state(conn, db_path)
    finally:
        conn.close()
    _layout(app, StudyScreens(db_path, settings.pair_mode), token_store, settings.pair_mode)


def _layout(app: gr.Blocks, screens: StudyScreens, token_store: gr.BrowserState, pair_mode: bool) -> None:
    token, position = gr.State(""), gr.State(0)
    with gr.Tab("Reader study"):
        gr.Markdown(NOTICE)
        message = gr.Markdown("", elem_id="study-message")
        with gr.Column(visible=True) as login_box:
            name = gr.Textbox(label="Reader name", elem_id="study-name")
            password = gr.Textbox(label="Password", type="password", elem_id="study-password")
            login_button = gr.Button("Log in", variant="primary", elem_id="study-login")
        with gr.Column(visible=False) as case_box:
            progress_md = gr.Markdown(elem_id="study-progress")
            with gr.Row():
                prior = gr.Image(label="Prior radiograph", type="numpy", image_mode="L", interactive=False, format="png")
                cand_a = gr.Image(label="Follow-up A" if pair_mode else "Follow-up", type="numpy", image_mode="L",
                                  interactive=False, format="png")
                cand_b = gr.Image(label="Follow-up B", type="numpy", image_mode="L", interactive=False, format="png",
                                  visible=pair_mode)
            text_md = gr.Markdown()
            with gr.Row():
                _, controls_a = _controls("Image A" if pair_mode else "Your rating", True)
                _, controls_b = _controls("Image B", pair_mode)
            comment = gr.Textbox(label="Comment (optional)", lines=2)
            with gr.Row():
                submit_button = gr.Button("Submit and continue", variant="primary", elem_id="study-submit")
                logout_button = gr.Button("Log out", elem_id="study-logout")
        done_md = gr.Markdown(visible=False, elem_id="study-done")
    with gr.Tab("Admin"):
        admin_password = gr.Textbox(label="Admin password", type="password")
        admin_button = gr.Button("Show summary")
        admin_text = gr.Markdown()
        admin_table = gr.Dataframe(visible=False, interactive=False)
    widgets = controls_a.widgets() + controls_b.widgets()
    outputs = [message, login_box, case_box, done_md, progress_md, prior, cand_a, cand_b, text_md, position, token,
               token_store, *widgets, comment]
    login_button.click(screens.login, [name, password], outputs, api_name="study_login")
    password.submit(screens.login, [name, password], outputs, api_name=False)
    submit_button.click(screens.submit, [token, position, *widgets, comment], outputs, api_name="study_submit")
    logout_button.click(screens.logout, [token], outputs, api_name="study_logout")
    app.load(screens.resume, [token_store], outputs, api_name="study_resume")
    admin_button.click(screens.admin, [admin_password], [admin_text, admin_table], api_name="study_admin")
