"""The reader-study web server (`python app.py --study DB`): login, logout and the study pages, nothing else.

* Login is a plain HTML form posted to /login (never a Gradio event, so no password reaches Gradio's run
  history, API, /config or logs). It is throttled (legend_demo.study.throttle) and answers in the same words
  whether the name or the password was wrong.
* A successful login sets a new random session token as an HttpOnly, SameSite=Lax cookie (Secure over HTTPS)
  and ends the token the browser held before. Sessions expire when idle and after a maximum age
  (legend_demo.study.sessions.SessionPolicy; LEGEND_STUDY_IDLE_MINUTES, LEGEND_STUDY_SESSION_HOURS).
* Every Gradio route needs a live session (gr.mount_gradio_app's auth_dependency); the page itself sends a
  visitor without one to /login, and each study handler re-checks the session and its role.
* The client address for throttling is the connection's, or X-Forwarded-For when the connection comes from a
  proxy uvicorn trusts (FORWARDED_ALLOW_IPS, default 127.0.0.1).
"""
from __future__ import annotations

import hashlib
import html
import logging
from pathlib import Path

import anyio
import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import logs
from ..study.auth import LoginOutcome, login
from ..study.db import connect
from ..study.sessions import SessionPolicy, close_session, find_session
from ..study.studies import study_settings
from ..study.throttle import ThrottlePolicy
from .study_app import STUDY_CSS, build_study_app
from .study_exports import add_export_routes

API_PREFIX = "/gradio_api"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",  # no clickjacking of the rating buttons
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{title} — log in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
main {{ max-width: 380px; margin: 10vh auto; background: #fff; padding: 28px; border-radius: 10px;
        box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.25rem; margin-top: 0; }} label {{ display: block; margin: 14px 0 4px; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; font-size: 1rem; }}
button {{ margin-top: 18px; width: 100%; padding: 10px; font-size: 1rem; background: #1d4ed8; color: #fff;
          border: 0; border-radius: 6px; cursor: pointer; }}
.message {{ background: #fff7ed; border: 1px solid #b45309; color: #7c2d12; padding: 8px; border-radius: 6px; }}
.note {{ color: #555; font-size: .85rem; }}
</style></head><body><main>
<h1>{title}</h1>
<p class="note">Research reader study: some follow-ups are synthetic (research use only, not for diagnosis).
Readers log in with the name and password they were given; the study admin logs in as <b>admin</b>.</p>
{message}
<form method="post" action="login">
<input type="hidden" name="via" value="form">
<label for="username">Name</label><input id="username" name="username" autocomplete="username" required maxlength="100">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<button type="submit" id="login-button">Log in</button>
</form></main></body></html>"""


def cookie_name(conn) -> str:
    """A cookie name of this study (cookies ignore ports, so two studies on one host must not share one)."""
    row = conn.execute("SELECT name, created_at FROM study WHERE id = 1").fetchone()
    return "legend_study_" + hashlib.sha256(f"{row['name']}\x00{row['created_at']}".encode()).hexdigest()[:12]


def check_study_db(db_path: str | Path) -> None:
    """ValueError / FileNotFoundError in one line unless `db_path` is a study database with a study in it."""
    conn = connect(db_path)
    try:
        study_settings(conn)
    finally:
        conn.close()


def create_study_server(db_path: str | Path, *, policy: SessionPolicy | None = None,
                        throttle: ThrottlePolicy | None = None) -> FastAPI:
    """The FastAPI app serving the study in `db_path` (run it with uvicorn, or `serve_study`)."""
    db_path = str(db_path)
    policy = policy or SessionPolicy.from_env()
    throttle = throttle or ThrottlePolicy()
    conn = connect(db_path)
    try:
        title = f"Reader study: {study_settings(conn).name}"
        cookie = cookie_name(conn)
    finally:
        conn.close()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def lookup(token: str | None):
        conn = connect(db_path)
        try:
            return find_session(conn, token, policy)
        finally:
            conn.close()

    async def session_of(request: Request):
        """The request's live session (looked up in a worker thread: SQLite may wait for a writer)."""
        return await anyio.to_thread.run_sync(lookup, request.cookies.get(cookie))

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Visitors without a session are sent from the page to the login form and refused by every Gradio API
        route (including the heartbeat, which Gradio leaves open); every answer gets safe headers."""
        path = request.url.path.rstrip("/")
        if path in ("", API_PREFIX) or path.startswith(API_PREFIX + "/"):
            if await session_of(request) is None:
                response: Response = (RedirectResponse("login", status_code=303) if path == "" and request.method == "GET"
                                      else JSONResponse({"detail": "Not authenticated"}, status_code=401))
                return _secured(response)
        response = _secured(await call_next(request))
        if path == "":  # the study page is never kept: Back after logging out asks again and lands on the login form
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, bye: int = 0) -> Response:
        note = "You are logged out. Your ratings are saved." if bye else ""
        return _login_page(title, note, 200)

    @app.post("/login")
    def login_submit(request: Request, username: str = Form(""), password: str = Form(""), via: str = Form("")) -> Response:
        client = request.client.host if request.client else "unknown"
        conn = connect(db_path)
        try:
            outcome = login(conn, username, password, client, throttle, replaces=request.cookies.get(cookie))
        finally:
            conn.close()
        return _login_answer(outcome, via == "form", title, cookie, policy, request)

    @app.api_route("/logout", methods=["GET", "POST"])
    def logout(request: Request) -> Response:
        conn = connect(db_path)
        try:
            close_session(conn, request.cookies.get(cookie))
        finally:
            conn.close()
        response = RedirectResponse("login?bye=1", status_code=303)
        response.delete_cookie(cookie, path="/")
        return response

    async def current_user(request: Request) -> str | None:
        session = await session_of(request)
        return None if session is None else (session.role if session.role == "admin" else f"reader-{session.reader_id}")

    add_export_routes(app, db_path, cookie, policy)  # the admin's downloads (legend_demo.ui.study_exports)
    blocks = build_study_app(db_path, cookie, policy)
    return gr.mount_gradio_app(
        app, blocks, path="/", auth_dependency=current_user, run_history=False, footer_links=["gradio", "settings"],
        max_file_size=1, ssr_mode=False, show_error=True,  # readers upload nothing: Gradio's /upload takes 1 byte
        css=STUDY_CSS,
    )


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _login_page(title: str, message: str, status: int) -> HTMLResponse:
    box = f"<p class='message' id='login-message'>{html.escape(message)}</p>" if message else ""
    page = LOGIN_PAGE.format(title=html.escape(title), message=box)
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _login_answer(outcome: LoginOutcome, from_form: bool, title: str, cookie: str, policy: SessionPolicy,
                  request: Request) -> Response:
    """Browser form: a redirect to the study (or the form again with the message); other clients: JSON."""
    if outcome.token is None:
        status = 429 if outcome.retry_after_s > 0 else 401
        headers = {"Retry-After": str(int(outcome.retry_after_s + 1))} if status == 429 else {}
        if from_form:
            page = _login_page(title, outcome.message, status)
            page.headers.update(headers)
            return page
        return JSONResponse({"detail": outcome.message}, status_code=status, headers=headers)
    response: Response = RedirectResponse("./", status_code=303) if from_form else JSONResponse({"success": True})
    response.set_cookie(cookie, outcome.token, max_age=int(policy.max_age_s), path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    response.headers["Cache-Control"] = "no-store"
    return response


def serve_study(db_path: str | Path, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the study until interrupted (blocking)."""
    import uvicorn

    logs.configure()  # login attempts and flagged cases reach the operator's console (legend_demo.study)
    auth_log = logging.getLogger("legend_demo.study")
    app = create_study_server(db_path)
    auth_log.info("reader study on http://%s:%s/ (readers and the admin log in there)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
