"""The terminal channel behind ``mnemobot chat``.

Each ``--bot`` is a console channel instance of its own (``console:<bot>``), like one
Telegram bot account; the ``--user`` value is the person's console account, the same person
for every bot.

On a terminal the line is read with prompt_toolkit: arrow keys edit it, ↑ recalls earlier
lines (kept per bot in ``history``, a file in the data folder), Ctrl-C or Ctrl-D leaves at
once, and a turn that takes a moment (a model call) shows that the bot is thinking. With piped
input it reads one message per line and prints each reply as ``bot: text`` and nothing else
on standard output, so it can be scripted. Either way a BASIC bot's ``PRINT`` lines go to
standard error, marked as that bot's log (:class:`BotLogHandler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from mnemobot.runtime import InboundMessage, Runtime

__all__ = ["BotLogHandler", "ConsoleChannel", "bot_log_to"]

THINKING_AFTER = 0.3  # seconds a turn may take before the bot is shown thinking
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_DIALOG_LOGGER = "mnemobot.runtime.dialogs"


class BotLogHandler(logging.Handler):
    """Writes a BASIC dialog's ``PRINT`` lines as ``[bot log] text`` to a stream.

    The interpreter logs each ``PRINT`` at INFO as ``"PRINT %s (%s:%d): %s"`` with the bot's
    name, the file, the line and the text; other records of the dialogs logger are not a
    bot's output and are left to the logging set-up.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if record.msg != "PRINT %s (%s:%d): %s" or not isinstance(args, tuple) or len(args) != 4:
            return
        bot, _file, _line, text = args
        try:
            self.stream.write(f"[{bot} log] {text}\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def bot_log_to(stream: TextIO) -> Iterator[None]:
    """Show ``PRINT`` lines of BASIC dialogs on ``stream`` while the block runs."""
    logger = logging.getLogger(_DIALOG_LOGGER)
    handler = BotLogHandler(stream)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class ConsoleChannel:
    """A conversation between one console user and one entry bot."""

    kind = "console"

    def __init__(
        self,
        runtime: Runtime,
        *,
        bot: str,
        user: str,
        history: Path | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.runtime = runtime
        self.bot = bot
        self.user = user
        self.name = f"console:{bot}"
        self.history = history
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def start(self) -> None:
        self.runtime.bind_channel(self.name, bot=self.bot)

    @property
    def interactive(self) -> bool:
        """A person at a terminal (both ends), rather than a script."""
        return self.stdin.isatty() and self.stdout.isatty()

    def inbound(self, text: str) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            channel_kind=self.kind,
            external_user_id=self.user,
            chat_id=self.user,
            text=text,
            event_id=str(uuid.uuid4()),
            display_name=self.user,
        )

    async def say(self, text: str) -> list[str]:
        """Send one line as the person; returns the printed replies."""
        thinking = asyncio.create_task(self._thinking()) if self.interactive else None
        try:
            result = await self.runtime.handle(self.inbound(text))
        finally:
            if thinking is not None:
                thinking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await thinking
        printed = [f"{reply.bot}: {reply.text}" for reply in result.replies]
        for line in printed:
            print(line, file=self.stdout, flush=True)
        await self.runtime.mark_sent(result)
        return printed

    async def _thinking(self) -> None:
        """After a moment, a spinner on stderr until cancelled; then the line is cleared."""
        await asyncio.sleep(THINKING_AFTER)
        shown = 0
        try:
            while True:
                frame = _FRAMES[shown % len(_FRAMES)]
                self.stderr.write(f"\r{frame} thinking…")
                self.stderr.flush()
                shown += 1
                await asyncio.sleep(0.1)
        finally:
            if shown:
                self.stderr.write("\r\x1b[K")
                self.stderr.flush()

    async def run(self) -> None:
        """Chat until end of input (Ctrl-D), Ctrl-C at the prompt, or ``/quit``."""
        if self.interactive:
            await self._run_terminal()
        else:
            await self._run_piped()

    async def _run_piped(self) -> None:
        while True:
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            await self.say(text)

    async def _run_terminal(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.input import create_input
        from prompt_toolkit.output import create_output

        history: History = InMemoryHistory()
        if self.history is not None:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(self.history))
        session: PromptSession[str] = PromptSession(
            history=history,
            input=create_input(self.stdin),
            output=create_output(self.stdout),
        )
        print(
            f"Chatting with {self.bot} as {self.user}. "
            "/end ends the session, /link links accounts, /quit, Ctrl-D or Ctrl-C leaves.",
            file=self.stderr,
            flush=True,
        )
        while True:
            try:
                line = await session.prompt_async("you> ")
            except (EOFError, KeyboardInterrupt):
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            await self.say(text)
