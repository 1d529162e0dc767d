"""The static pages mnemobot serves from ``adapters/web/static/``: where they are, and the
memory inspector's page at ``/admin/``.

Kept apart from the web chat channel because the inspector is no part of it (it belongs
with the admin API, and is served whenever that is, with or without a web channel); the
two only share the folder of files and the redirect from the bare path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "inspector_routes", "redirect_to"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


def redirect_to(path: str) -> Any:
    """An endpoint that redirects (307) to ``path``: a bare ``/chat`` or ``/admin`` typed in
    the address bar still finds its page, which lives at the path with the slash."""

    async def redirect(_request: Request) -> Response:
        return RedirectResponse(path, status_code=307)

    return redirect


def inspector_routes() -> list[BaseRoute]:
    """The memory inspector's static page at ``/admin/``; it calls the admin API.

    The page carries no data and needs no auth: it asks for the admin token and sends it
    as a bearer token to ``/admin/api/...``, which checks it.
    """

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "inspector.html", headers={"Cache-Control": "no-store"})

    return [
        Route("/admin", redirect_to("/admin/"), methods=["GET"]),
        Route("/admin/", page, methods=["GET"], name="inspector"),
        Mount("/admin/static", app=StaticFiles(directory=STATIC_DIR), name="admin-static"),
    ]
