"""Logging set-up: JSON lines for machines, short lines for people, no secrets either way.

``mnemobot run`` under systemd, Docker or Kubernetes writes to a pipe, and whatever collects
the logs wants one JSON object per line; at a terminal a person wants to read them. So
:func:`configure_logging` picks by whether the stream is a terminal (``json_lines`` forces
either). Fields travel in ``extra={"fields": {...}}`` and become JSON keys, or ``k=v`` pairs.

:func:`log_turn` is the one line per turn: bot, channel, user id, outcome, duration and reply
count. The message text goes in only when debug was asked for (``debug=True``, i.e. the
operator turned it on); tokens and secrets never reach it, and a field whose name says it
holds one is masked by the formatters as a last line of defence.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "configure_logging",
    "log_turn",
    "turn_fields",
]

TURN_LOGGER = "mnemobot.turns"
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "authorization")
_HANDLER_NAME = "mnemobot"


def _masked(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in fields.items()
    }


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return _masked(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    """``12:00:01 INFO turn bot=sales-bot channel=console:sales-bot ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {pairs}{sep}{tail}"


def configure_logging(
    stream: TextIO | None = None,
    *,
    level: int | str = logging.INFO,
    json_lines: bool | None = None,
) -> logging.Handler:
    """Send mnemobot's logs to ``stream`` (stderr): JSON unless it is a terminal.

    Idempotent: calling it again replaces the handler it installed before, so tests and a
    CLI that configures twice do not print every line twice. Returns the handler.
    """
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        isatty = getattr(stream, "isatty", None)
        json_lines = not (callable(isatty) and isatty())
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json_lines else HumanFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in _CHATTY:  # libraries that narrate their set-up at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler


_CHATTY = ("alembic.runtime.plugins", "httpx", "httpcore", "LiteLLM", "telegram.ext")


def turn_fields(
    *,
    bot: str | None,
    channel: str,
    user_id: str | None,
    outcome: str,
    seconds: float,
    replies: int = 0,
    text: str | None = None,
    debug: bool = False,
) -> dict[str, Any]:
    """The fields of the per-turn line; ``text`` is kept only when ``debug`` is on."""
    fields: dict[str, Any] = {
        "event": "turn",
        "bot": bot,
        "channel": channel,
        "user_id": user_id,
        "outcome": outcome,
        "ms": round(seconds * 1000, 1),
        "replies": replies,
    }
    if debug and text is not None:
        fields["text"] = text
    return fields


def log_turn(
    *,
    bot: str | None,
    channel: str,
    user_id: str | None,
    outcome: str,
    seconds: float,
    replies: int = 0,
    text: str | None = None,
    debug: bool = False,
    logger: logging.Logger | None = None,
) -> None:
    """Write the one line a turn leaves in the log (see :func:`turn_fields`).

    A failed turn logs at warning so it stands out; its cause is logged where it happened.
    """
    fields = turn_fields(
        bot=bot,
        channel=channel,
        user_id=user_id,
        outcome=outcome,
        seconds=seconds,
        replies=replies,
        text=text,
        debug=debug,
    )
    level = logging.WARNING if outcome == "failed" else logging.INFO
    (logger or logging.getLogger(TURN_LOGGER)).log(level, "turn", extra={"fields": fields})
