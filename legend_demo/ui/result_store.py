"""Where result files (downloads) live, tied to the browser session that made them, and their purging.

Layout: <Gradio cache>/legend_results/<session key>/<random>/files. Inside Gradio's own cache folder, Gradio
serves the files in place (no second copy elsewhere). The session key is a hash of Gradio's session id; a
folder is deleted when its session ends (the page is closed: `purge_session`, wired to `demo.unload`) or
RESULT_TTL_S after it was written (`purge_stale`, run on every write), whichever comes first. API clients
(gradio_client) download their files at once, so the TTL is all they need.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import time
from pathlib import Path

RESULT_TTL_S = 3600.0  # the same hour Gradio keeps session state (gr.State time_to_live) and its cache
RESULTS_DIR = "legend_results"
log = logging.getLogger("legend_demo.ui")


def gradio_cache() -> Path:
    """Gradio's upload and cache folder ($GRADIO_TEMP_DIR, else <tmp>/gradio), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def results_root() -> Path:
    return gradio_cache() / RESULTS_DIR


def current_session() -> str | None:
    """The Gradio session id of the event being handled, if any (None outside an event)."""
    try:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
    except (ImportError, AttributeError):
        return None
    return getattr(request, "session_hash", None)


def session_folder(session: str | None) -> Path:
    """This session's folder (a hash of its id, so a client-chosen id never becomes a path)."""
    key = hashlib.sha256((session or "no-session").encode("utf-8")).hexdigest()[:24]
    return results_root() / key


def result_folder(session: str | None = None) -> Path:
    """A new, empty folder with a random name for one result of `session` (default: the current event's)."""
    purge_stale()
    folder = session_folder(session if session is not None else current_session()) / secrets.token_hex(8)
    folder.mkdir(parents=True, mode=0o700)
    return folder


def purge_session(request=None) -> None:
    """Delete every result of a session (`demo.unload(purge_session)`: Gradio passes the closing session)."""
    session = getattr(request, "session_hash", None) if request is not None else current_session()
    if session:
        _remove(session_folder(session))
    purge_stale()


def purge_stale(ttl_s: float = RESULT_TTL_S, now: float | None = None) -> int:
    """Delete result folders older than `ttl_s` (and session folders left empty); return how many."""
    root, now = results_root(), time.time() if now is None else now
    if not root.is_dir():
        return 0
    removed = 0
    for session in root.iterdir():
        if not session.is_dir() or session.is_symlink() or not re.fullmatch(r"[0-9a-f]{24}", session.name):
            continue
        for result in list(session.iterdir()):
            try:
                stale = now - result.stat().st_mtime > ttl_s
            except FileNotFoundError:
                continue
            if stale:
                _remove(result)
                removed += 1
        try:
            session.rmdir()  # only when empty: a folder being filled right now is never touched
        except OSError:
            pass
    return removed


def _remove(path: Path) -> None:
    try:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:  # never fail a request because a purge could not finish
        log.warning("could not delete result files: %s", exc)
