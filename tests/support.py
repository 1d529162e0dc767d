"""Helpers that make tests read like chat transcripts."""

from __future__ import annotations

import asyncio
import io
import socket
import textwrap
import time
from pathlib import Path
from typing import Any

from mnemobot.adapters.console import ConsoleChannel
from mnemobot.runtime.pipeline.runtime import Runtime


class Chat:
    """One person talking to one entry bot through the console channel.

    ``await chat.say("hi")`` returns the replies as ``"bot: text"`` lines, exactly what
    ``mnemobot chat`` prints.
    """

    def __init__(self, runtime: Runtime, *, bot: str, user: str) -> None:
        self.out = io.StringIO()
        self.channel = ConsoleChannel(runtime, bot=bot, user=user, stdout=self.out)
        self.channel.start()
        self.runtime = runtime

    async def say(self, text: str) -> list[str]:
        return await self.channel.say(text)

    async def user_id(self) -> str:
        return self.runtime.identity.find(self.channel.user)


def write_bot(
    root: Path,
    name: str,
    *,
    bot_py: str | None = None,
    config: str | None = None,
    start_bas: str | None = None,
) -> Path:
    """Create ``root/name`` with the given files (dedented) and return the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    files = {"bot.py": bot_py, "config.csv": config, "start.bas": start_bas}
    for filename, content in files.items():
        if content is not None:
            (folder / filename).write_text(textwrap.dedent(content).lstrip(), encoding="utf-8")
    if config is None:
        (folder / "config.csv").write_text("name,value\n", encoding="utf-8")
    return folder


async def eventually(check: Any, within: float = 5.0, what: str = "condition") -> Any:
    """Poll ``check()`` (sync) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
