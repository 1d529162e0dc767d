"""The static pages mnemobot serves from ``adapters/web/static/``: where they are, the
memory inspector's page at ``/admin/``, and the home page at ``/`` that links to the pages.

Kept apart from the web chat channel because the inspector is no part of it (it belongs
with the admin API, and is served whenever that is, with or without a web channel); the
two only share the folder of files and the redirect from the bare path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "home_routes", "inspector_routes", "redirect_to"]

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


_PAGES = (
    ("/chat/", "Web chat", "Talk to the bots in this browser."),
    ("/admin/", "Memory inspector", "See and correct what the bots remember (admin token)."),
)


def home_routes(paths: set[str]) -> list[BaseRoute]:
    """``/``: links to the pages this server has (``/chat/``, ``/admin/``, among ``paths``),
    and the favicon. No inline script or style (the security headers forbid them)."""
    links = "".join(
        f'<li><a href="{path}">{title}<span>{what}</span></a></li>'
        for path, title, what in _PAGES
        if path in paths
    ) or (
        '<li class="hint">No page is served here: add a web channel, or set '
        "MNEMOBOT_ADMIN_TOKEN for the inspector.</li>"
    )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>mnemobot</title>"
        '<link rel="icon" type="image/svg+xml" href="/favicon.svg">'
        '<link rel="stylesheet" href="/static/home.css"></head><body>'
        '<h1><img src="/favicon.svg" alt="">mnemobot</h1>'
        f'<ul id="pages">{links}</ul>'
        '<p class="hint">Health: <a href="/healthz">/healthz</a></p></body></html>'
    )

    async def home(_request: Request) -> Response:
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def favicon(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    return [
        Route("/", home, methods=["GET"], name="home"),
        Route("/favicon.svg", favicon, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="home-static"),
    ]
