"""Logs: JSON lines off a terminal, readable lines on one, and no text unless debug is on."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mnemobot.runtime.ops.logs import configure_logging, log_turn


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging():
    """configure_logging changes process-wide state: the root's handlers and level, and the
    levels of chatty libraries' loggers (httpx...). Later tests must not inherit them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logger.level for name, logger in _loggers()}
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in _loggers():
        logger.setLevel(levels.get(name, logging.NOTSET))


def _loggers() -> list[tuple[str, logging.Logger]]:
    known = list(logging.root.manager.loggerDict.items())
    return [(name, logger) for name, logger in known if isinstance(logger, logging.Logger)]


def test_a_pipe_gets_one_json_object_per_turn_without_the_text(restore_logging):
    stream = io.StringIO()
    configure_logging(stream)
    configure_logging(stream)  # configuring again does not double the lines

    log_turn(
        bot="sales-bot",
        channel="sales-telegram",
        user_id="u-1",
        outcome="ok",
        seconds=0.0123,
        replies=2,
        text="my password is hunter2",
    )

    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "turn" and entry["level"] == "info"
    assert entry["logger"] == "mnemobot.turns"
    assert {k: entry[k] for k in ("bot", "channel", "user_id", "outcome", "ms", "replies")} == {
        "bot": "sales-bot",
        "channel": "sales-telegram",
        "user_id": "u-1",
        "outcome": "ok",
        "ms": 12.3,
        "replies": 2,
    }
    assert "hunter2" not in line and "text" not in entry


def test_debug_adds_the_text_and_a_failed_turn_is_a_warning(restore_logging):
    stream = io.StringIO()
    configure_logging(stream, level=logging.DEBUG)

    log_turn(bot="b", channel="c", user_id=None, outcome="failed", seconds=1, text="hi", debug=True)

    entry = json.loads(stream.getvalue())
    assert entry["text"] == "hi" and entry["level"] == "warning"


def test_a_terminal_gets_readable_lines_and_secret_fields_are_masked(restore_logging):
    stream = Terminal()
    configure_logging(stream)

    log_turn(bot="sales-bot", channel="console:sales-bot", user_id="u-1", outcome="ok", seconds=0.5)
    logging.getLogger("mnemobot.adapters.x").info("sent", extra={"fields": {"api_token": "xoxb-1"}})

    first, second = stream.getvalue().splitlines()
    assert "INFO mnemobot.turns: turn" in first
    assert "bot=sales-bot channel=console:sales-bot user_id=u-1 outcome=ok ms=500.0" in first
    assert second.endswith("sent api_token=***") and "xoxb" not in second
    assert not stream.getvalue().startswith("{")


def test_every_logger_and_handler_keeps_secrets_out_chained_causes_included(
    restore_logging, monkeypatch: pytest.MonkeyPatch
):
    """Issue 14: redaction is the logging set-up's, not a filter on two named loggers."""
    from mnemobot.runtime.settings import Settings

    token = "7150123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    signing = "a-slack-signing-secret-value"
    monkeypatch.setenv("TG_SALES", token)  # a variable name that does not say "token"
    monkeypatch.setenv("SLACK_SIGNING", signing)
    monkeypatch.setenv("OPENAI_API_KEY", "not-shaped-like-a-key-1234")
    settings = Settings(
        channels=[
            {"name": "tg", "kind": "telegram", "bot": "b", "token_env": "TG_SALES"},
            {"name": "sl", "kind": "slack", "bot": "b", "signing_secret_env": "SLACK_SIGNING"},
        ],
        database={"url": "postgresql+psycopg://bot:db-pass-word@127.0.0.1/x"},
    )
    ours, theirs = io.StringIO(), io.StringIO()
    configure_logging(ours, settings=settings)
    library = logging.getLogger("some.library")  # its own handler, not propagating
    own = logging.StreamHandler(theirs)
    own.setFormatter(logging.Formatter("%(message)s"))
    library.addHandler(own)
    library.propagate = False
    try:
        try:
            try:
                raise ValueError(f"connect to postgresql://bot:db-pass-word@h failed ({signing})")
            except ValueError as cause:
                raise RuntimeError(f"The token `{token}` was rejected by the server.") from cause
        except RuntimeError:
            library.exception("could not start %s", f"https://api.telegram.org/bot{token}/getMe")
            logging.getLogger("mnemobot.x").exception("failed", extra={"fields": {"u": signing}})
        logging.getLogger("mnemobot.y").warning(
            "keys %s and %s", "not-shaped-like-a-key-1234", "sk-proj-abcdefghijklmnopqrstuv"
        )
    finally:
        library.removeHandler(own)
        library.propagate = True

    logged = ours.getvalue() + theirs.getvalue()
    assert "was rejected" in logged and "ValueError" in logged  # the cause is there...
    for secret in (token, signing, "db-pass-word", "not-shaped", "sk-proj-abcdefghijklmnopqrstuv"):
        assert secret not in logged  # ...without a secret
    assert logged.count("[redacted]") >= 8
