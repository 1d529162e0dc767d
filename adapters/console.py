"""The terminal channel behind ``mnemobot chat``.

Each ``--bot`` is a console channel instance of its own (``console:<bot>``), like one
Telegram bot account; the ``--user`` value is the person's console account, the same person
for every bot. Interactive on a terminal; with piped input it reads one message per line and
prints each reply as ``bot: text``, so it can be scripted.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TextIO

from mnemobot.runtime import InboundMessage, Runtime

__all__ = ["ConsoleChannel"]


class ConsoleChannel:
    """A conversation between one console user and one entry bot."""

    kind = "console"

    def __init__(
        self,
        runtime: Runtime,
        *,
        bot: str,
        user: str,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.runtime = runtime
        self.bot = bot
        self.user = user
        self.name = f"console:{bot}"
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def start(self) -> None:
        self.runtime.bind_channel(self.name, bot=self.bot)

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
        result = await self.runtime.handle(self.inbound(text))
        printed = [f"{reply.bot}: {reply.text}" for reply in result.replies]
        for line in printed:
            print(line, file=self.stdout, flush=True)
        await self.runtime.mark_sent(result)
        return printed

    async def run(self) -> None:
        """Chat until end of input (Ctrl-D) or ``/quit``."""
        interactive = self.stdin.isatty()
        if interactive:
            print(
                f"Chatting with {self.bot} as {self.user}. "
                "/end ends the session, /link links accounts, /quit or Ctrl-D leaves.",
                file=self.stderr,
            )
        while True:
            if interactive:
                print("you> ", end="", file=self.stdout, flush=True)
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            await self.say(text)
