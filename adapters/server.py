"""The one ASGI app for every webhook and event endpoint, served by uvicorn.

``GET /healthz`` answers 200 while the runtime is up; channels add their own routes
(``POST /webhooks/<kind>/<channel name>``). Every response carries the security headers of
:mod:`mnemobot.adapters.headers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from mnemobot.adapters.headers import SecurityHeaders
from mnemobot.adapters.web.pages import home_routes
from mnemobot.runtime.errors import ConfigError

__all__ = ["build_app", "check_port_free", "serve"]


def build_app(routes: Sequence[BaseRoute], *, bots: Sequence[str]) -> Starlette:
    """The app: a health check, a home page linking to the pages among ``routes``, and every
    channel's routes, behind the security headers."""

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "bots": list(bots)})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            *routes,
            *home_routes({str(getattr(route, "path", "")) for route in routes}),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )


def check_port_free(host: str, port: int) -> None:
    """Fail up front, with one clear line, when the port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); set [server] port "
                "or MNEMOBOT_SERVER__PORT"
            ) from exc


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``mnemobot run`` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Starlette, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``app`` until ``stop`` is set, then shut down gracefully."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
