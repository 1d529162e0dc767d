"""Security headers on every response of the one ASGI app: what a browser may do with our pages.

The memory inspector (``/admin/``) holds the admin token and a Forget button, and the web chat
(``/chat/``) speaks for a visitor; neither may be framed by another site (clickjacking), run
a script we did not serve, or send our URLs as a referrer. The pages are built for this: no
inline script or style, everything from ``/chat/static`` and ``/admin/static``, and the only
connections are ``fetch``/``EventSource`` to the same origin. JSON carrying a person's data
(``/admin/api/``, ``/chat/api/``) is never stored by a browser or a proxy cache.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so the chat's event streams pass
through untouched: it only adds headers to ``http.response.start``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_POLICY", "SecurityHeaders"]

PAGE_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
"""For every response: pages get exactly what chat.js and inspector.js use; anything else
(JSON, event streams, webhooks answers) is never a document that could run or frame."""

_ALWAYS = {
    "content-security-policy": PAGE_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
_PRIVATE_PREFIXES = ("/admin/api/", "/chat/api/")


class SecurityHeaders:
    """Adds :data:`_ALWAYS` to every HTTP response, and ``Cache-Control: no-store`` to the
    JSON APIs that carry personal data (a route's own Cache-Control elsewhere is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = str(scope.get("path", "")).startswith(_PRIVATE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers[name] = value
                if private:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
