"""The study admin's downloads: the ratings CSV and the iMRMC input with its key file, made fresh from the database
on every request and served only to an admin session (anyone else gets 403, nobody logged in 401). Nothing is
written to disk and nothing is cached by the browser."""
from __future__ import annotations

from typing import Callable

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from ..study.db import connect
from ..study.export import csv_text, imrmc_texts
from ..study.sessions import SessionPolicy, find_session

EXPORTS: dict[str, tuple[str, Callable]] = {  # file name → (media type, text from a connection)
    "ratings.csv": ("text/csv", lambda conn: csv_text(conn)[0]),
    "vtt.imrmc": ("text/plain", lambda conn: imrmc_texts(conn)[0]),
    "vtt.key.csv": ("text/csv", lambda conn: imrmc_texts(conn)[1]),
}


def add_export_routes(app: FastAPI, db_path: str, cookie: str, policy: SessionPolicy) -> None:
    """GET admin/export/<name> for every name in EXPORTS, behind the admin session."""

    def export(token: str | None, name: str) -> tuple[int, str]:
        conn = connect(db_path)
        try:
            session = find_session(conn, token, policy)
            if session is None:
                return 401, "Not authenticated: log in as the study admin."
            if session.role != "admin":
                return 403, "Only the study admin can download the exports."
            return 200, EXPORTS[name][1](conn)
        finally:
            conn.close()

    @app.get("/admin/export/{name}")
    async def download(name: str, request: Request) -> Response:
        if name not in EXPORTS:
            return PlainTextResponse("No such export.", status_code=404)
        status, body = await anyio.to_thread.run_sync(export, request.cookies.get(cookie), name)
        headers = {"Cache-Control": "no-store"}
        if status != 200:
            return PlainTextResponse(body, status_code=status, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(body.encode("utf-8"), media_type=f"{EXPORTS[name][0]}; charset=utf-8", headers=headers)
