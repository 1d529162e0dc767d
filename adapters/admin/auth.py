"""Who may call the admin API: bearer tokens from the environment, checked in constant time.

Authentication: every route, the OpenAPI document included, wants
``Authorization: Bearer TOKEN`` with a token from ``MNEMOBOT_ADMIN_TOKEN``. The variable
holds one token, or comma-separated ``NAME:TOKEN`` pairs so each operator has their own
token and the audit log says who did what (a bare token acts as ``admin``). Tokens are
compared in constant time; each must be at least 16 characters. Unset or empty: the API is
not mounted at all (404), and :func:`admin_status_line` is the start-up line saying so.

Kept apart from the routes so the token rules can be read (and the start-up line printed by
the CLI) without the HTTP handlers; ``/metrics`` reuses :func:`bearer` and :func:`match`.
:data:`ADMIN_PREFIX` lives here too, as the start-up line names where the API is served.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mnemobot.runtime.errors import ConfigError

__all__ = [
    "ACTOR_KEY",
    "ADMIN_PREFIX",
    "ADMIN_TOKEN_ENV",
    "MIN_TOKEN_LENGTH",
    "RequireToken",
    "admin_status_line",
    "admin_tokens",
    "bearer",
    "match",
]

ADMIN_PREFIX = "/admin/api"
ADMIN_TOKEN_ENV = "MNEMOBOT_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16
ACTOR_KEY = "mnemobot.admin_actor"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def admin_tokens(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{token: actor name}`` from ``MNEMOBOT_ADMIN_TOKEN``; empty when the API is off.

    Raises ConfigError for a token shorter than 16 characters: a guessable token on an API
    that can read and erase everyone's memory is worse than no API.
    """
    raw = (os.environ if environ is None else environ).get(ADMIN_TOKEN_ENV, "").strip()
    tokens: dict[str, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, sep, token = part.partition(":")
        if not sep or not _NAME.match(name):
            name, token = "admin", part
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{ADMIN_TOKEN_ENV}: a token is shorter than {MIN_TOKEN_LENGTH} characters; "
                "use a long random one, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        tokens[token] = name
    return tokens


def admin_status_line(environ: Mapping[str, str] | None = None) -> str:
    """The one start-up line that says whether the admin API is served, and how to change it."""
    tokens = admin_tokens(environ)
    if not tokens:
        return f"admin API off: set {ADMIN_TOKEN_ENV} to serve it at {ADMIN_PREFIX}/"
    who = ", ".join(sorted(set(tokens.values())))
    return f"admin API on at {ADMIN_PREFIX}/ (bearer token from {ADMIN_TOKEN_ENV}; for {who})"


def bearer(scope: Scope) -> bytes | None:
    """The credentials of an ``Authorization: Bearer`` header; None if absent or not Bearer."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


def match(presented: bytes | None, tokens: Mapping[str, str]) -> str | None:
    """The actor whose token was presented; every token is compared, in constant time."""
    found: str | None = None
    candidate = presented or b""
    for token, name in tokens.items():
        if hmac.compare_digest(candidate, token.encode()) and presented is not None:
            found = name
    return found


class RequireToken:
    """ASGI wrapper: 401 unless a known bearer token comes with the request."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str], realm: str) -> None:
        self.app = app
        self.tokens = dict(tokens)
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        actor = match(bearer(scope), self.tokens)
        if actor is None:
            response = JSONResponse(
                {"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{self.realm}"'},
            )
            await response(scope, receive, send)
            return
        scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)
