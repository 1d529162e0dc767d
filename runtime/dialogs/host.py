"""What a dialog needs from the runtime, as a Protocol the interpreter calls.

The interpreter knows nothing of users, bots, sessions or databases; the runtime adapts its
turn context to this protocol. Keeping the surface this small is what lets the interpreter be
tested with a dict and lets the runtime roll a failed turn back in one place.

Conventions every implementation follows:

- Values are JSON (str, int, float, bool, None, list, dict with str keys) and go in and come
  back as they are: a map written with ``user_memory_set`` reads back as a map.
- A missing key reads as ``""`` (``None`` is accepted too and treated the same).
- Writing ``""`` clears the key (``user_memory_set``, ``bot_memory_set``, ``session_set``,
  ``temp_set``).
- Any method may raise a ``runtime.errors.MnemobotError`` (``MemoryFull``, ``LLMError``, a
  ``DialogRuntimeError`` from the HTTP fetcher...); the interpreter adds the line it ran.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DialogHost"]


class DialogHost(Protocol):
    """The runtime side of a dialog run: one person, one bot, one conversation."""

    @property
    def bot_name(self) -> str:
        """The running bot, for logs (``PRINT``) and error messages."""
        ...

    async def talk(self, text: str) -> None:
        """Send ``text`` to the person (``TALK``)."""
        ...

    async def user_memory_get(self, key: str) -> Any:
        """``GET USER MEMORY(key)``: the person's value across all bots, or ``""``."""
        ...

    async def user_memory_set(self, key: str, value: Any) -> None:
        """``SET USER MEMORY key, value``; ``""`` clears the key."""
        ...

    async def user_fact_set(self, key: str, value: Any) -> None:
        """``SET USER FACT key, value``: user memory of type fact; ``""`` clears it."""
        ...

    async def user_facts(self) -> dict[str, Any]:
        """``USER FACTS()``: every fact of the person, key to value."""
        ...

    async def user_memory_add(self, text: Any, topics: Any) -> None:
        """``ADD USER MEMORY text[, topics]``: a free-text memory about the person
        (``topics`` None when not given); a bad text or topics raises InvalidValue."""
        ...

    async def user_memories(self) -> list[dict[str, Any]]:
        """``USER MEMORIES()``: the person's free-text memories, oldest first, each a map
        with id, text (and memory), topics, created_at, updated_at."""
        ...

    async def bot_memory_get(self, key: str) -> Any:
        """``GET BOT MEMORY(key)``: this bot's value shared by all users, or ``""``."""
        ...

    async def bot_memory_set(self, key: str, value: Any) -> None:
        """``SET BOT MEMORY key, value``; ``""`` clears the key."""
        ...

    async def session_get(self, key: str) -> Any:
        """``GET key``: this conversation's session value, or ``""``."""
        ...

    async def session_set(self, key: str, value: Any) -> None:
        """``SET key, value`` in the session; ``""`` clears the key."""
        ...

    async def context_set(self, key: str, value: Any) -> None:
        """``SET CONTEXT key AS value``: a session value the LLM prompt includes."""
        ...

    async def temp_get(self, key: str) -> Any:
        """``GET TEMP key``: this dialog's temp value (Botpress's ``temp``), or ``""``."""
        ...

    async def temp_set(self, key: str, value: Any) -> None:
        """``SET TEMP key, value``: kept until the dialog ends, the session ends or a
        transfer; ``""`` clears the key."""
        ...

    async def summarize_session(self) -> None:
        """``SUMMARIZE SESSION``: have this session summarised into an episode when it ends,
        even with episodic-memory-auto-summarize false."""
        ...

    async def llm(self, prompt: str) -> str:
        """``x = LLM prompt``: the model's answer with the bot's assembled context."""
        ...

    async def recall(self, query: str, limit: int) -> list[dict[str, Any]]:
        """``found = RECALL query[, limit]``: the best ``limit`` things remembered about the
        person for ``query`` (each a map with kind, text, date, bot, channel...), best first."""
        ...

    async def transfer(self, bot: str) -> None:
        """``TRANSFER CONVERSATION TO bot``: make ``bot`` active in this conversation."""
        ...

    async def http_get(self, url: str) -> Any:
        """``GET "https://..."``: fetch under the bot's allow-list and limits, JSON parsed.

        Implementations normally call ``runtime.dialogs.http_fetch.fetch_json_or_text``.
        """
        ...
