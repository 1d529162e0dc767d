"""A dict-backed DialogHost for the interpreter tests.

Values are stored as they would be in the database: through ``json.dumps``/``json.loads``,
so a test that reads memory back sees only what JSON can carry. Several hosts can share one
``Memory`` to play two bots talking to the same person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mnemobot.runtime.dialogs import DialogOutcome, run_dialog
from mnemobot.runtime.dialogs.parser import Dialog


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@dataclass
class Memory:
    """Everything that outlives one bot's session: user memory, facts, bot memory."""

    user: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    bots: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)  # free-text memories


class FakeHost:
    """One person talking to one bot; records everything the dialog does."""

    def __init__(
        self,
        bot_name: str = "test-bot",
        *,
        memory: Memory | None = None,
        llm: Callable[[str], str] | None = None,
        http: dict[str, Any] | None = None,
    ) -> None:
        self.bot_name = bot_name
        self.memory = memory or Memory()
        self.session: dict[str, Any] = {}
        self.context: dict[str, Any] = {}
        self.temp: dict[str, Any] = {}
        self.summaries_asked = 0
        self.said: list[str] = []
        self.prompts: list[str] = []
        self.transfers: list[str] = []
        self.recalls: list[tuple[str, int]] = []
        self.fetched: list[str] = []
        self._llm = llm or (lambda prompt: f"LLM answer to: {prompt}")
        self._http = http or {}

    @property
    def bot_memory(self) -> dict[str, Any]:
        return self.memory.bots.setdefault(self.bot_name, {})

    @staticmethod
    def _put(store: dict[str, Any], key: str, value: Any) -> None:
        if value == "":
            store.pop(key, None)
        else:
            store[key] = _json(value)

    async def talk(self, text: str) -> None:
        assert isinstance(text, str)
        self.said.append(text)

    async def user_memory_get(self, key: str) -> Any:
        return _json(self.memory.user.get(key, ""))

    async def user_memory_set(self, key: str, value: Any) -> None:
        self._put(self.memory.user, key, value)

    async def user_fact_set(self, key: str, value: Any) -> None:
        self._put(self.memory.facts, key, value)

    async def user_facts(self) -> dict[str, Any]:
        return dict(_json(self.memory.facts))

    async def bot_memory_get(self, key: str) -> Any:
        return _json(self.bot_memory.get(key, ""))

    async def bot_memory_set(self, key: str, value: Any) -> None:
        self._put(self.bot_memory, key, value)

    async def session_get(self, key: str) -> Any:
        return _json(self.session.get(key, ""))

    async def session_set(self, key: str, value: Any) -> None:
        self._put(self.session, key, value)

    async def context_set(self, key: str, value: Any) -> None:
        self._put(self.context, key, value)

    async def temp_get(self, key: str) -> Any:
        return _json(self.temp.get(key, ""))

    async def temp_set(self, key: str, value: Any) -> None:
        self._put(self.temp, key, value)

    async def user_memory_add(self, text: Any, topics: Any) -> None:
        self.memory.notes.append({"text": text, "topics": _json(topics or [])})

    async def user_memories(self) -> list[dict[str, Any]]:
        return _json(self.memory.notes)

    async def summarize_session(self) -> None:
        self.summaries_asked += 1

    async def llm(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self._llm(prompt)

    async def recall(self, query: str, limit: int) -> list[dict[str, Any]]:
        self.recalls.append((query, limit))
        return [{"kind": "turn", "text": f"you said {query}", "date": "2026-01-01"}][:limit]

    async def transfer(self, bot: str) -> None:
        self.transfers.append(bot)

    async def http_get(self, url: str) -> Any:
        self.fetched.append(url)
        return _json(self._http[url])


async def converse(
    dialog: Dialog, host: FakeHost, messages: list[str], **options: Any
) -> list[DialogOutcome]:
    """Open the dialog, then answer each HEAR with the next message.

    The state goes through json.dumps/json.loads between messages, as it would through the
    session table, so nothing can survive in Python objects.
    """
    outcomes = [await run_dialog(dialog, host, None, "hello", **options)]
    for message in messages:
        previous = outcomes[-1]
        assert previous.waiting, f"dialog ended before the message {message!r}"
        assert previous.state is not None
        state = json.loads(json.dumps(previous.state))
        outcomes.append(await run_dialog(dialog, host, state, message, **options))
    return outcomes
