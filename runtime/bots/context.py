"""What a bot's code sees during a turn: ``ctx.user``, ``ctx.bot``, ``ctx.session``, ``ctx.temp``,
``ctx.say``.

Every read and write goes through the turn's :class:`~runtime.memory.store.PendingWrites`,
so a bot that raises leaves nothing behind, and everything it wrote commits together with
its replies. Bots import nothing else from mnemobot.

Example ``bots/<name>/bot.py``::

    async def on_message(ctx):
        name = await ctx.user.memory.get("name")
        await ctx.say(f"Hello, {name or 'there'}!")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mnemobot.runtime.bots.options import BotOptions
from mnemobot.runtime.episodes.jobs import SUMMARY_REQUESTED
from mnemobot.runtime.errors import MemoryDisabled
from mnemobot.runtime.memories.view import MemoriesView
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.messages import InboundMessage

__all__ = ["BotContext", "BotView", "FactsView", "SessionView", "TurnState", "UserView"]


@dataclass
class TurnState:
    """What a turn has decided so far, beyond memory writes (shared by every bot it runs)."""

    replies: list[tuple[str, str]] = field(default_factory=list)  # (bot, text)
    active_bot: str = ""
    dialog_state: Any = None
    transfer_to: str | None = None
    end_session: bool = False


class FactsView:
    """The person's facts: user memory entries of memory_type ``fact``, shared by every bot."""

    def __init__(self, memory: MemoryScope) -> None:
        self._memory = memory

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._memory.get(key, default)

    async def set(self, key: str, value: Any) -> None:
        await self._memory.set(key, value, memory_type="fact")

    async def delete(self, key: str) -> None:
        await self._memory.delete(key)

    async def all(self) -> dict[str, Any]:
        """Every fact, key to value (``USER FACTS()`` in BASIC)."""
        return {r.key: r.value for r in await self._memory.rows() if r.memory_type == "fact"}


@dataclass(frozen=True)
class UserView:
    """The person: id, name, memory shared by all bots, facts, past episodes, and recall.

    ``await ctx.user.recall("query", limit=5)`` searches everything remembered about the
    person (what they said to any bot on any channel, episodes, facts and their earlier
    values), best first; each result is a dict with ``kind`` (turn, episode, fact, earlier
    fact, memory), ``text``, ``date``, ``at``, ``score`` and, where known, ``bot``, ``channel``,
    ``role``, ``key`` and ``session_id``.

    ``ctx.user.memories`` holds free-text memories about the person (seed 004's
    ``UserMemory``): ``add``, ``upsert``, ``get``, ``list``, ``delete``, ``delete_many``
    (see :class:`~runtime.memories.view.MemoriesView`).
    """

    id: str
    display_name: str
    memory: MemoryScope
    facts: FactsView
    episodes: Callable[[int], Awaitable[list[dict[str, Any]]]]
    recall: Callable[..., Awaitable[list[dict[str, Any]]]]
    memories: MemoriesView


@dataclass(frozen=True)
class BotView:
    """The bot running now: its name, its config.csv options, its own memory."""

    name: str
    options: BotOptions
    memory: MemoryScope


class SessionView:
    """This conversation's session: ``get``/``set`` values and the LLM ``context``.

    Both are cleared when the session ends (inactivity or ``ctx.end_session()``).
    ``await ctx.session.summarize()`` asks for its summary (an episode).
    """

    def __init__(
        self,
        session_id: str,
        opened_now: bool,
        memory: MemoryScope,
        context: MemoryScope,
        marks: MemoryScope | None = None,
        episodes_enabled: bool = True,
    ):
        self.id = session_id
        self.opened_now = opened_now
        self.context = context
        self._memory = memory
        self._marks = marks  # the runtime's own marks on the session (kind "runtime")
        self._episodes_enabled = episodes_enabled

    async def summarize(self) -> None:
        """Have this session summarised into an episode, even with
        ``episodic-memory-auto-summarize,false`` or below ``episodic-memory-threshold``.

        The episode worker writes it once the session ends (inactivity, ``/end`` or
        ``ctx.end_session()``), so it covers the whole session and is written once however
        often this is called; the request commits with the turn. MemoryDisabled when the
        bot has ``episodic-memory-enabled,false``.
        """
        if not self._episodes_enabled or self._marks is None:
            raise MemoryDisabled(
                "episodic memory is off for this bot (episodic-memory-enabled,false in "
                "config.csv): no session summary can be written"
            )
        await self._marks.set(SUMMARY_REQUESTED, True)

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._memory.get(key, default)

    async def set(self, key: str, value: Any) -> None:
        await self._memory.set(key, value)

    async def delete(self, key: str) -> None:
        await self._memory.delete(key)

    async def items(self) -> dict[str, Any]:
        return await self._memory.items()


class BotContext:
    """Everything one bot may use while handling one message."""

    def __init__(
        self,
        *,
        message: InboundMessage,
        user: UserView,
        bot: BotView,
        session: SessionView,
        temp: MemoryScope,
        turn: TurnState,
        llm: Callable[[BotContext, str], Awaitable[str]],
    ) -> None:
        self.message = message
        self.user = user
        self.bot = bot
        self.session = session
        # Botpress's ``temp``: this dialog's or flow's values (get/set/delete/items/clear),
        # cleared when the dialog ends, the session ends or the conversation is transferred.
        self.temp = temp
        self._turn = turn
        self._llm = llm
        self.log = logging.getLogger(f"mnemobot.bots.{bot.name}")

    @property
    def text(self) -> str:
        """What the person just said."""
        return self.message.text

    async def say(self, text: str) -> None:
        """Queue a reply; it is sent once the turn has committed."""
        if not isinstance(text, str):
            text = str(text)
        if text.strip():
            self._turn.replies.append((self.bot.name, text))

    async def transfer(self, bot: str, *, handoff: dict[str, Any] | None = None) -> None:
        """Make ``bot`` the active bot of this conversation, handing over ``handoff``.

        The handoff travels in user memory as ``handoff_context`` (the seed's Context
        Handoff Pattern); the receiving bot reads it and clears it. The receiver's
        ``on_transfer`` (or its ``start.bas``) runs in this same turn.
        """
        if handoff is not None:
            await self.user.memory.set("handoff_context", handoff, memory_type="context")
        self._turn.transfer_to = bot

    async def llm(self, prompt: str) -> str:
        """Ask the bot's model, with the person's facts and session context in the prompt."""
        return await self._llm(self, prompt)

    def end_session(self) -> None:
        """End the session after this turn (its session memory and context are cleared)."""
        self._turn.end_session = True

    @property
    def dialog_state(self) -> Any:
        return self._turn.dialog_state

    @dialog_state.setter
    def dialog_state(self, state: Any) -> None:
        self._turn.dialog_state = state
