"""Logging set-up: JSON lines for machines, short lines for people, no secrets either way.

``mnemobot run`` under systemd, Docker or Kubernetes writes to a pipe, and whatever collects
the logs wants one JSON object per line; at a terminal a person wants to read them. So
:func:`configure_logging` picks by whether the stream is a terminal (``json_lines`` forces
either). Fields travel in ``extra={"fields": {...}}`` and become JSON keys, or ``k=v`` pairs.

:func:`log_turn` is the one line per turn: bot, channel, user id, outcome, duration and reply
count. The message text goes in only when debug was asked for (``debug=True``, i.e. the
operator turned it on); tokens and secrets never reach it, and a field whose name says it
holds one is masked by the formatters as a last line of defence.

Secrets are kept out of every log line by the set-up itself, not by the code that logs:
:func:`configure_logging` installs a log record factory (:class:`Redactor`) that every logger
of the process goes through, ours, the libraries' and uvicorn's with its own handlers alike.
When a record is made it replaces, in the message, the stack and the exception's
text (its traceback, chained causes included), every configured secret (channel tokens,
signing secrets, API keys named by ``*_env`` settings, admin tokens, the database password,
any ``*_TOKEN``/``*_SECRET``/``*_API_KEY``/``*_PASSWORD`` variable) and anything shaped like a
credential (``secrets_filter.redact_credentials``) with ``[redacted]``; our formatters clean
the lines they write once more (``extra`` fields arrive after the factory). So a library that
logs ``InvalidToken("The token `123:ABC...` was rejected")`` with ``logger.exception`` writes
``The token `[redacted]` was rejected``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote, urlsplit

from mnemobot.runtime.memory.secrets_filter import redact_credentials

if TYPE_CHECKING:
    from mnemobot.runtime.settings import Settings

__all__ = [
    "HumanFormatter",
    "JsonFormatter",
    "Redactor",
    "configure_logging",
    "configured_secrets",
    "log_turn",
    "turn_fields",
]

TURN_LOGGER = "mnemobot.turns"
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "authorization")
_HANDLER_NAME = "mnemobot"
_SECRET_VARIABLES = ("_TOKEN", "_SECRET", "_API_KEY", "_PASSWORD", "_KEY")
MIN_SECRET_LENGTH = 6  # shorter values are not secrets worth the name, and would mangle lines
REDACTED = "[redacted]"


class Redactor:
    """Replaces every known secret, and anything shaped like a credential, in a text.

    Also the log record factory :func:`configure_logging` installs: called with a record
    factory's arguments, it makes the record with the factory it wraps, then cleans it.
    """

    def __init__(
        self, secrets: Iterable[str] = (), wraps: Callable[..., logging.LogRecord] | None = None
    ) -> None:
        variants = {v for s in secrets if len(s) >= MIN_SECRET_LENGTH for v in (s, quote(s, ""))}
        self._secrets = sorted(variants, key=len, reverse=True)
        self._wraps = wraps or logging.LogRecord

    @property
    def wraps(self) -> Callable[..., logging.LogRecord]:
        return self._wraps

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._wraps(*args, **kwargs)
        self.clean(record)
        return record

    def text(self, text: str) -> str:
        """``text`` with every secret and credential replaced by ``[redacted]``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_credentials(text)

    def clean(self, record: logging.LogRecord) -> None:
        """Redact ``record`` in place: message, stack, exception text with its causes."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's to report
            message = str(record.msg)
        clean = self.text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatted now (Formatter.format uses exc_text when it is set); the traceback
            # module prints the chained causes and contexts too.
            record.exc_text = self.text("".join(traceback.format_exception(*record.exc_info)))
            record.exc_text = record.exc_text.rstrip("\n")
        elif record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)


def configured_secrets(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret this deployment is configured with, to keep out of the logs.

    The values of the variables that settings name with ``*_env`` (channel tokens, signing
    and webhook secrets, app tokens, cookie secrets, model API keys), each admin token, the
    database URL's password, and any variable whose name ends in ``_TOKEN``, ``_SECRET``,
    ``_API_KEY``, ``_KEY`` or ``_PASSWORD`` (the provider keys litellm reads on its own).
    """
    env = os.environ if environ is None else environ
    names = {name for name in env if name.upper().endswith(_SECRET_VARIABLES)}
    found: list[str] = []
    if settings is not None:
        sections: list[Any] = [
            settings.llm.model_dump(),
            *(c.model_dump() for c in settings.channels),
        ]
        names |= set(_env_names(sections))
        password = urlsplit(settings.database.url).password
        if password:
            found.append(password)
    for name in sorted(names):
        value = env.get(name, "").strip()
        if value:
            found.append(value)
            found.extend(part.strip() for part in value.split(","))  # token lists
            found.extend(part.partition(":")[2] for part in value.split(","))  # name:token
    return [s for s in dict.fromkeys(found) if len(s) >= MIN_SECRET_LENGTH]


def _env_names(value: Any) -> Iterable[str]:
    """The values of every ``*_env`` key in nested settings (variable names)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).endswith("_env") and isinstance(item, str) and item:
                yield item
            else:
                yield from _env_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _env_names(item)


def _masked(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in fields.items()
    }


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return _masked(fields) if isinstance(fields, dict) else {}


def _redacted(line: str) -> str:
    """``line`` through the installed redaction: ``extra`` fields are set on a record after
    the record factory has run, so our formatters clean what they write once more."""
    factory = logging.getLogRecordFactory()
    return factory.text(line) if isinstance(factory, Redactor) else line


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
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _redacted(json.dumps(entry, ensure_ascii=False, default=str))


class HumanFormatter(logging.Formatter):
    """``12:00:01 INFO turn bot=sales-bot channel=console:sales-bot ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if not pairs:
            return _redacted(line)
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        return _redacted(f"{head} {pairs}{sep}{tail}")


def configure_logging(
    stream: TextIO | None = None,
    *,
    level: int | str = logging.INFO,
    json_lines: bool | None = None,
    settings: Settings | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Send mnemobot's logs to ``stream`` (stderr): JSON unless it is a terminal, and keep
    every secret out of every log record of the process (see the module docstring).

    Args:
        settings: the deployment's settings, whose ``*_env`` variables hold secrets; call
            again once they are loaded (the environment's ``*_TOKEN``... are covered before).
        secrets: more values to redact.

    Idempotent: calling it again replaces the handler and the redaction it installed before,
    so tests and a CLI that configures twice do not print every line twice. Returns the
    handler.
    """
    install_redaction([*configured_secrets(settings), *secrets])
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


def install_redaction(secrets: Iterable[str]) -> Redactor:
    """Make every log record of the process redact ``secrets`` and credential-shaped text.

    Replaces a redaction installed before (the factory it wrapped is kept), so calling it
    again with more secrets does not stack factories. Returns the installed redactor.
    """
    current = logging.getLogRecordFactory()
    base = current.wraps if isinstance(current, Redactor) else current
    redactor = Redactor(secrets, wraps=base)
    logging.setLogRecordFactory(redactor)
    return redactor


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
