"""The reader-study web server (`python app.py --study DB`): login, logout and the study pages, nothing else.

* Login is a plain HTML form posted to /login (never a Gradio event, so no password reaches Gradio's run
  history, API, /config or logs). It is throttled (legend_demo.study.throttle) and answers in the same words
  whether the name or the password was wrong. At most PASSWORD_CHECKS passwords are checked at once, on their own
  threads (scrypt takes ≈16 MiB each); waiting logins hold no thread, so the pages stay quick during a burst.
* POST /login and /logout are refused unless the browser says they come from this origin
  (legend_demo.ui.study_guards): a foreign page can neither log a victim in as the attacker nor log them out.
  Logout is POST only; GET /logout shows a button.
* A successful login sets a new random session token as an HttpOnly, SameSite=Lax cookie (Secure over HTTPS)
  and ends the token the browser held before. Sessions expire when idle and after a maximum age
  (legend_demo.study.sessions.SessionPolicy; LEGEND_STUDY_IDLE_MINUTES, LEGEND_STUDY_SESSION_HOURS). It also
  sets a signed device cookie (legend_demo.study.devices) that the throttle trusts instead of an address.
* Every Gradio route needs a live session (gr.mount_gradio_app's auth_dependency); the page itself sends a
  visitor without one to /login, and each study handler re-checks the session and its role. Gradio requests are
  capped at MAX_GRADIO_BODY bytes, and a refused answer is not repeated back.
* The client address is the connection's. X-Forwarded-For and X-Forwarded-Proto are believed only from the
  proxies named in LEGEND_STUDY_TRUSTED_PROXIES (none by default); uvicorn's own proxy handling is off.
* Every answer carries a Content-Security-Policy (the study page: nonce-marked scripts from this server only),
  X-Frame-Options: DENY, nosniff and Referrer-Policy: same-origin.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..core import logs, settings
from ..study import devices
from ..study.auth import LoginOutcome, check_credentials, finish_login, start_login
from ..study.db import connect
from ..study.sessions import SessionPolicy, close_session, find_session
from ..study.studies import study_settings
from ..study.throttle import ThrottlePolicy
from .study_app import STUDY_CSS, build_study_app
from .study_guards import (
    LOGIN_PAGE_CSP, MAX_GRADIO_BODY, BodyLimit, add_nonce, cross_site_reason, new_nonce, own_origin, page_csp,
)
from .study_exports import add_export_routes

API_PREFIX = "/gradio_api"
TRUSTED_PROXIES_ENV = "LEGEND_STUDY_TRUSTED_PROXIES"
PASSWORD_CHECKS = max(1, min(4, os.cpu_count() or 1))  # scrypt checks running at once (≈16 MiB each)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",  # no clickjacking of the rating buttons
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no address leaves the study; same-origin posts keep their Origin header
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",  # answers that are not pages
}
CROSS_SITE = "This request came from another site and was refused. Open the study's own page to log in or out."
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>{title} — log in</title>
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
LOGOUT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — log out</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 10vh auto; max-width: 380px; }}
button {{ padding: 10px 18px; font-size: 1rem; }}</style></head><body>
<p>Log out of the reader study? Your ratings are saved.</p>
<form method="post" action="logout"><button type="submit" id="logout-button">Log out</button></form>
<p><a href="./">Back to the study</a></p></body></html>"""


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
                        throttle: ThrottlePolicy | None = None,
                        trusted_proxies: tuple[str, ...] | None = None) -> FastAPI:
    """The FastAPI app serving the study in `db_path` (run it with `serve_study`: uvicorn's own proxy-header
    handling must stay off). `trusted_proxies` (default LEGEND_STUDY_TRUSTED_PROXIES): the only addresses whose
    X-Forwarded-For / X-Forwarded-Proto are believed."""
    db_path = str(db_path)
    policy = policy or SessionPolicy.from_env()
    throttle = throttle or ThrottlePolicy()
    proxies = settings.get(TRUSTED_PROXIES_ENV) if trusted_proxies is None else tuple(trusted_proxies)
    conn = connect(db_path)
    try:
        title = f"Reader study: {study_settings(conn).name}"
        cookie = cookie_name(conn)
        device_key = devices.device_key(conn)
    finally:
        conn.close()
    device_cookie = cookie + "_device"
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Dedicated threads for scrypt: a bounded number at once, and always the same few threads, so the memory
    # allocator keeps at most a few 16 MiB scrypt buffers (shared worker threads would each keep one).
    password_checks = ThreadPoolExecutor(max_workers=PASSWORD_CHECKS, thread_name_prefix="study-password")

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
        route (including the heartbeat, which Gradio leaves open); every answer gets safe headers, and an HTML
        page its script nonce and policy."""
        path = request.url.path.rstrip("/")
        if path in ("", API_PREFIX) or path.startswith(API_PREFIX + "/"):
            if await session_of(request) is None:
                response: Response = (RedirectResponse("login", status_code=303) if path == "" and request.method == "GET"
                                      else JSONResponse({"detail": "Not authenticated"}, status_code=401))
                return _secured(response)
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html") and "content-security-policy" not in response.headers:
            response = await _with_nonce(response)
        response = _secured(response)
        if path == "":  # the study page is never kept: Back after logging out asks again and lands on the login form
            response.headers["Cache-Control"] = "no-store"
        return response

    def refused_cross_site(request: Request, action: str) -> Response | None:
        """403 (and one log line) when a login or logout was posted by a page of another origin."""
        reason = cross_site_reason(request.headers, own_origin(request.url.scheme, request.headers.get("host", "")))
        if reason is None:
            return None
        logging.getLogger("legend_demo.study.auth").warning(
            "study %s refused: posted by another site (%s) from %s", action, reason, _client(request))
        return _login_page(title, CROSS_SITE, 403)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, bye: int = 0) -> Response:
        note = "You are logged out. Your ratings are saved." if bye else ""
        return _login_page(title, note, 200)

    @app.post("/login")
    async def login_submit(request: Request, username: str = Form(""), password: str = Form(""),
                           via: str = Form("")) -> Response:
        refusal = refused_cross_site(request, "login")
        if refusal is not None:
            return refusal
        # A browser without a valid device cookie gets a new one, but only with a successful login; its attempt is
        # recorded under that new device, so the device is known for this name from then on.
        held = request.cookies.get(device_cookie)
        device_value = held if devices.device_of(device_key, held) else devices.new_device_cookie(device_key)
        device = devices.device_of(device_key, device_value)
        outcome = await attempt(username, password, _client(request), device, request.cookies.get(cookie))
        response = _login_answer(outcome, via == "form", title, cookie, policy, request)
        if outcome.token is not None:
            response.set_cookie(device_cookie, device_value, max_age=int(throttle.trusted_s), path="/", httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
        return response

    async def attempt(username: str, password: str, client: str, device: str | None, replaces: str | None) -> LoginOutcome:
        """The throttle, then the password check on one of PASSWORD_CHECKS dedicated threads (a waiting login holds
        no thread and no database connection), then the session."""
        started = await anyio.to_thread.run_sync(with_db, partial(start_login, name=username, password=password,
                                                                  client=client, throttle=throttle, device=device))
        if isinstance(started, LoginOutcome):
            return started
        checked = await asyncio.get_running_loop().run_in_executor(
            password_checks, with_db, partial(check_credentials, name=username, password=password))
        return await anyio.to_thread.run_sync(with_db, partial(finish_login, attempt=started, checked=checked,
                                                               client=client, replaces=replaces))

    def with_db(action):
        conn = connect(db_path)
        try:
            return action(conn)
        finally:
            conn.close()

    @app.get("/logout", response_class=HTMLResponse)
    async def logout_page() -> Response:
        """A link to /logout shows a button: only a POST from this origin ends the session."""
        page = HTMLResponse(LOGOUT_PAGE.format(title=html.escape(title)), headers={"Cache-Control": "no-store"})
        page.headers["Content-Security-Policy"] = LOGIN_PAGE_CSP
        return page

    @app.post("/logout")
    def logout(request: Request) -> Response:
        refusal = refused_cross_site(request, "logout")
        if refusal is not None:
            return refusal
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
    _quiet_choice_errors(blocks)
    app.add_middleware(BodyLimit, prefix=API_PREFIX, limit=MAX_GRADIO_BODY)
    if proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(proxies))  # outermost: before every check
    return gr.mount_gradio_app(
        app, blocks, path="/", auth_dependency=current_user, run_history=False, footer_links=["gradio", "settings"],
        max_file_size=1, ssr_mode=False, show_error=True,  # readers upload nothing: Gradio's /upload takes 1 byte
        css=STUDY_CSS,
    )


def _client(request: Request) -> str:
    """The client's address: the connection's (or, from a trusted proxy, the address it forwarded)."""
    return request.client.host if request.client else "unknown"


async def _with_nonce(response: Response) -> Response:
    """An HTML page with a fresh nonce on its script tags and the page policy that allows only those."""
    body = b"".join([chunk async for chunk in response.body_iterator])
    nonce = new_nonce()
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
    headers["Content-Security-Policy"] = page_csp(nonce)
    return Response(add_nonce(body, nonce), status_code=response.status_code, headers=headers)


def _quiet_choice_errors(blocks: gr.Blocks) -> None:
    """Gradio's Radio repeats a refused value in its error message (a 100 kB value came back whole); study
    answers outside the choices are refused in a few words instead."""
    for block in blocks.blocks.values():
        if isinstance(block, gr.Radio):
            block.preprocess = partial(_choice_or_refuse, block.preprocess)


def _choice_or_refuse(preprocess, payload):
    try:
        return preprocess(payload)
    except gr.Error:
        raise gr.Error("That answer is not one of the choices.") from None


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in response.headers:
            response.headers[name] = value
    return response


def _login_page(title: str, message: str, status: int) -> HTMLResponse:
    box = f"<p class='message' id='login-message'>{html.escape(message)}</p>" if message else ""
    page = LOGIN_PAGE.format(title=html.escape(title), message=box)
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store",
                                                           "Content-Security-Policy": LOGIN_PAGE_CSP})


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
    proxies = settings.get(TRUSTED_PROXIES_ENV)
    auth_log.info("client addresses: %s", f"X-Forwarded-For from {', '.join(proxies)}" if proxies
                  else "the connection's (no proxy trusted; set LEGEND_STUDY_TRUSTED_PROXIES behind a reverse proxy)")
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS);
    # the app handles forwarded headers itself, from LEGEND_STUDY_TRUSTED_PROXIES only.
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
