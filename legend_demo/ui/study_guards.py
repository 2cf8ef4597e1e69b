"""Request checks of the reader-study server (issue 24): same-origin form posts, the Content-Security-Policy, and a
cap on the size of Gradio requests. Pure functions and one ASGI middleware; legend_demo.ui.study_server wires them.

* Cross-site form posts (login CSRF, logout by a foreign page): a browser says where a request comes from in
  headers a web page cannot set — `Sec-Fetch-Site` (Chrome, Edge, Firefox, Safari 16.4+), else `Origin`, else
  `Referer`. A POST to /login or /logout is refused unless they say "this origin"; a request with none of them
  comes from a program, not from a page a victim visits, and is let through (the throttle still applies).
* Content-Security-Policy: scripts only from this server — inline ones only with the page's one-time nonce (the
  server adds it to the `<script>` tags of the page it serves) or loaded by those ('strict-dynamic'); no plugins,
  no framing, forms post only here, connections only to here. Gradio 6 compiles gr.HTML templates and js_on_load
  with `Function(...)`, so 'unsafe-eval' stays; styles may be inline (Svelte and Gradio's theme inject them).
"""
from __future__ import annotations

import re
import secrets
from typing import Mapping
from urllib.parse import urlsplit

ALLOWED_FETCH_SITES = ("same-origin", "none")  # "none": the user typed or bookmarked it
LOGIN_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                  "frame-ancestors 'none'; base-uri 'none'")
MAX_GRADIO_BODY = 64 * 1024  # bytes: a rating with a 2,000-character comment is a few kB
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)
_MODULE_PRELOAD = re.compile(rb"<link(?=[^>]*rel=[\"']?modulepreload)", re.IGNORECASE)


def own_origin(scheme: str, host: str) -> str:
    """'scheme://host[:port]' as a browser writes this server's origin (the Host header keeps a non-default port)."""
    return f"{scheme}://{host}".lower()


def cross_site_reason(headers: Mapping[str, str], origin: str) -> str | None:
    """Why a state-changing request did not come from a page of `origin` (None: it did, or no browser sent it)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site.strip().lower() in ALLOWED_FETCH_SITES else f"Sec-Fetch-Site: {site[:40]}"
    sender = headers.get("origin")
    if sender is not None:
        return None if sender.strip().lower().rstrip("/") == origin else f"Origin: {sender[:100]}"
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer.strip())
        return None if f"{parts.scheme}://{parts.netloc}".lower() == origin else "a Referer from another origin"
    return None


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def page_csp(nonce: str) -> str:
    """The policy of a study page whose scripts carry `nonce`."""
    return ("default-src 'self'; "
            f"script-src 'nonce-{nonce}' 'strict-dynamic' 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; frame-src 'none'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def add_nonce(page: bytes, nonce: str) -> bytes:
    """Every `<script>` and module-preload tag of an HTML page, marked with `nonce`."""
    mark = f' nonce="{nonce}"'.encode()
    page = _SCRIPT_TAG.sub(lambda m: m.group(0) + mark, page)
    return _MODULE_PRELOAD.sub(lambda m: m.group(0) + mark, page)


class BodyLimit:
    """ASGI middleware: a request under `prefix` whose body exceeds `limit` bytes is answered 413 before the app
    reads it (Gradio would otherwise repeat an oversized invalid value back in its error message)."""

    def __init__(self, app, prefix: str, limit: int = MAX_GRADIO_BODY):
        self.app, self.prefix, self.limit = app, prefix, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send) -> None:
    body = b'{"detail": "Request too large."}'
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
