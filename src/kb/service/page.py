"""The web page at /ui: search, ask, documents, jobs and stats for people who do not live in
a terminal. Static files from the package (kb/service/ui: HTML, CSS, plain JavaScript, no
build step, nothing from a CDN), so it works offline, like /docs.

The page and its assets hold no data, so they need no token (guards.py lets /ui through);
every data call the page makes carries the token its reader gave it. A strict Content
Security Policy keeps the page to this server: scripts, styles and connections from 'self'
only, so no text it shows (a document's passage, an answer) can load or run anything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from kb.service.context import ok, service_of
from kb.version import __version__

UI_DIR = Path(__file__).with_name("ui")
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidated (ETag) on every load: an upgraded kb serves its new page at once
}


class _PageFiles(StaticFiles):
    def file_response(self, full_path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        response.headers.update(HEADERS)
        return response


def mount(app: FastAPI) -> None:
    """/ui (a redirect to /ui/, where relative links resolve), /ui/server.json and the files."""

    @app.get("/ui", include_in_schema=False)
    async def page() -> Response:
        return RedirectResponse("ui/", status_code=307)  # relative: right behind a proxy's path prefix too

    @app.get("/ui/server.json", include_in_schema=False)
    async def server(request: Request) -> Response:
        """Whether the page must ask for a token before its first data call (a 401 would say
        so too, but as an error in the browser's console)."""
        service = await service_of(request)
        required = await service.call(lambda: service.auth.required)
        return ok({"token_required": required, "version": __version__}, headers={"cache-control": "no-store"})

    app.mount("/ui", _PageFiles(directory=UI_DIR, html=True), name="ui")
