"""Runs a bot's ``start.bas`` inside a turn: the runtime's side of :class:`DialogHost`.

Every BASIC memory statement goes through the turn's context, so a dialog's writes commit
with its replies or not at all, exactly like a Python bot's. Where the dialog waits at
``HEAR`` is saved in the session (``dialog_state``), so the next message resumes it in any
process, after any restart.
"""

from __future__ import annotations

import logging
from typing import Any

from mnemobot.runtime.bots.context import BotContext
from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.clock import Clock
from mnemobot.runtime.dialogs import (
    DialogLimits,
    DialogStateError,
    fetch_json_or_text,
    run_dialog,
)

__all__ = ["ContextDialogHost", "run_bot_dialog"]

logger = logging.getLogger(__name__)


def _missing_as_empty(value: Any) -> Any:
    return "" if value is None else value


class ContextDialogHost:
    """A :class:`~runtime.dialogs.DialogHost` over one bot's turn context."""

    def __init__(self, ctx: BotContext) -> None:
        self._ctx = ctx

    @property
    def bot_name(self) -> str:
        return self._ctx.bot.name

    async def talk(self, text: str) -> None:
        await self._ctx.say(text)

    async def user_memory_get(self, key: str) -> Any:
        value = await self._ctx.user.memory.get(key)
        if value is None and key == "recent_episodes":  # the seed's way to read episodes
            return await self._ctx.user.episodes(self._ctx.bot.options.episodic_memory_history)
        return _missing_as_empty(value)

    async def user_memory_set(self, key: str, value: Any) -> None:
        await self._ctx.user.memory.set(key, value)

    async def user_fact_set(self, key: str, value: Any) -> None:
        if value == "":
            await self._ctx.user.facts.delete(key)
        else:
            await self._ctx.user.facts.set(key, value)

    async def user_facts(self) -> dict[str, Any]:
        return await self._ctx.user.facts.all()

    async def user_memory_add(self, text: Any, topics: Any) -> None:
        await self._ctx.user.memories.add(text, topics=topics)

    async def user_memories(self) -> list[dict[str, Any]]:
        return [m.as_dict() for m in await self._ctx.user.memories.list()]

    async def bot_memory_get(self, key: str) -> Any:
        return _missing_as_empty(await self._ctx.bot.memory.get(key))

    async def bot_memory_set(self, key: str, value: Any) -> None:
        await self._ctx.bot.memory.set(key, value)

    async def session_get(self, key: str) -> Any:
        return _missing_as_empty(await self._ctx.session.get(key))

    async def session_set(self, key: str, value: Any) -> None:
        await self._ctx.session.set(key, value)

    async def context_set(self, key: str, value: Any) -> None:
        await self._ctx.session.context.set(key, value)

    async def temp_get(self, key: str) -> Any:
        return _missing_as_empty(await self._ctx.temp.get(key))

    async def temp_set(self, key: str, value: Any) -> None:
        await self._ctx.temp.set(key, value)

    async def summarize_session(self) -> None:
        await self._ctx.session.summarize()

    async def llm(self, prompt: str) -> str:
        return await self._ctx.llm(prompt)

    async def recall(self, query: str, limit: int) -> list[dict[str, Any]]:
        return await self._ctx.user.recall(query, limit=limit)

    async def transfer(self, bot: str) -> None:
        await self._ctx.transfer(bot)

    async def http_get(self, url: str) -> Any:
        options = self._ctx.bot.options
        return await fetch_json_or_text(
            url,
            allow_hosts=list(options.http_allow_hosts),
            allow_private=options.http_allow_private,
            timeout=options.http_timeout,
            max_bytes=options.http_max_bytes,
        )


async def run_bot_dialog(ctx: BotContext, bot: Bot, message: str | None, clock: Clock) -> None:
    """Start ``bot``'s dialog (``message`` None) or resume it with the person's ``message``."""
    host = ContextDialogHost(ctx)
    limits = DialogLimits(max_steps=bot.options.dialog_step_budget)
    state = ctx.dialog_state if message is not None else None
    try:
        outcome = await run_dialog(bot.dialog, host, state, message, limits=limits, clock=clock)
    except DialogStateError as exc:
        # The saved position no longer fits the program (start.bas changed): start over.
        logger.warning("dialog state of bot %s dropped: %s; restarting the dialog", bot.name, exc)
        await ctx.temp.clear()  # the old run's flow is over, and its temp memory with it
        outcome = await run_dialog(bot.dialog, host, None, None, limits=limits, clock=clock)
    ctx.dialog_state = outcome.state if outcome.waiting else None
    if not outcome.waiting:
        await ctx.temp.clear()  # the dialog ended: so does its temp memory
