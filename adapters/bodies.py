"""Reading an untrusted request body: at most so many bytes, and JSON no deeper than so much.

One helper for every surface that takes JSON from outside (the web chat, the admin API, the
Slack webhook), so each refuses the same inputs the same way: a body over its byte limit is
never read whole, and a body that is not UTF-8, not JSON, or nested deeper than
:data:`MAX_JSON_DEPTH` is a :class:`_BadBody` (the surface answers 4xx) instead of an
exception from deep inside a parser (``RecursionError`` on ``"[" * 4000``, a 500 that Slack
would retry).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from starlette.requests import Request

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_WEBHOOK_BODY",
    "json_depth",
    "parse_json",
    "read_limited",
]

MAX_WEBHOOK_BODY = 1_000_000
"""The largest platform event taken (Telegram and Slack send a few KB; files go by link)."""

MAX_JSON_DEPTH = 100
"""Arrays and objects inside each other; far above any real event, far below the recursion
limit. Memory values have their own, lower limit (``memory.values.MAX_DEPTH``)."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class _BadBody(ValueError):
    """A body that cannot be taken; ``str()`` says why, fit to show the sender.

    Control flow inside the adapters (each surface answers it with ``status``), hence private
    and not in ``runtime/errors.py``.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it (or its Content-Length) passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # as Request.body() caches it: Bolt reads it again
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings not counted)."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(_DEPTH_STEP[c] for c in brackets), default=0)


def parse_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``raw``; raises _BadBody when it is not UTF-8, not JSON, or too deep.

    The depth is measured before parsing, so no parser ever recurses that far.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise _BadBody(f"body is not UTF-8 (byte {exc.start})") from None
    if json_depth(text) > max_depth:
        raise _BadBody(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _BadBody(f"body is not JSON: {exc}") from None
