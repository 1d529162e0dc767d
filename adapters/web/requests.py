"""What the web chat API accepts from a browser, and how it says no.

Kept apart from the channel because it is plain request shaping with no state: a posted
message is read with a byte limit (a browser is untrusted, so the body is never read whole
before it is measured), checked for its JSON shape, its length and its client id, and
refused with a JSON error the page can show as it is. The channel only turns what passes
into an ``InboundMessage``.
"""

from __future__ import annotations

import re
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

from mnemobot.adapters.bodies import _BadBody, parse_json, read_limited
from mnemobot.adapters.web.limits import Refusal

__all__ = ["client_address", "error", "language", "read_message", "too_many"]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


async def read_message(request: Request, max_chars: int) -> tuple[str, str] | JSONResponse:
    """The text and client id of a posted message, or the response that refuses it.

    A message without an ``id`` gets a random one, so it cannot be recognised when retried;
    the page always sends one.
    """
    body = await read_limited(request, max_chars * 4 + 1024)
    if body is None:
        return _too_long(None, max_chars)
    try:
        data = parse_json(body)
    except _BadBody as exc:
        return error(400, f'{exc}; send JSON: {{"id": "<message id>", "text": "<your message>"}}')
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return error(400, 'send JSON: {"id": "<message id>", "text": "<your message>"}')
    text = data["text"].strip()
    if not text:
        return error(400, "the message is empty")
    if len(text) > max_chars:
        return _too_long(len(text), max_chars)
    client_id = data.get("id")
    if client_id is None:
        client_id = secrets.token_urlsafe(12)
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        return error(400, "id must be 8-64 letters, digits, '-' or '_'")
    return text, client_id


def error(status: int, message: str) -> JSONResponse:
    """A refusal as ``{"error": message}``; the page shows the message to the person."""
    return JSONResponse({"error": message}, status_code=status)


def too_many(refusal: Refusal) -> JSONResponse:
    """429 with ``Retry-After``: the page shows the message, and may send again after it."""
    response = error(429, refusal.message)
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def client_address(request: Request) -> str:
    """The address the request came from, as uvicorn reports it (see ``web.limits``)."""
    return request.client.host if request.client is not None else "unknown"


def _too_long(size: int | None, limit: int) -> JSONResponse:
    said = f"{size} characters" if size is not None else "too many bytes"
    return error(
        413,
        f"message too long ({said}; the limit is {limit} characters): "
        "please send it in shorter parts",
    )


def language(request: Request) -> str | None:
    """The browser's first preferred language (``Accept-Language``), as a hint only."""
    header = request.headers.get("accept-language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    return first if first and first != "*" and len(first) <= 35 else None
