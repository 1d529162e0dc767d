"""The Agno side of ``bench/pipeline.py``: one agent, its SqliteDb sessions, 20 user memories.

Why a separate module: Agno is an optional, benchmark-only dependency (``agno[sqlite]``). The
bench imports this module inside a ``try`` so that everything else still runs, and says so,
when Agno is not installed. Nothing in ``runtime/`` may import it.

The agent is set up the way a chat bot with memory would use Agno: ``SqliteDb`` storing the
session and its runs, ``add_history_to_context`` with the last 10 runs (20 messages, the same
20 recent turns mnemobot puts in its prompt), ``add_memories_to_context`` with the person's
20 memories, telemetry off. The model is :class:`FakeAgnoModel`, an in-process ``Model``
subclass that returns a fixed text, so what is timed is Agno itself and its storage, as the
fake LLM does for mnemobot.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("AGNO_TELEMETRY", "false")  # before agno is imported: no network

from agno.agent import Agent
from agno.db.schemas.memory import UserMemory
from agno.db.sqlite import SqliteDb
from agno.models.base import Model
from agno.models.response import ModelResponse

__all__ = ["AGNO_VERSION", "AgnoSide", "FakeAgnoModel"]


def _version() -> str:
    from importlib.metadata import version

    return version("agno")


AGNO_VERSION = _version()


@dataclass
class FakeAgnoModel(Model):
    """A model that answers ``reply`` at once and keeps the messages it was sent.

    ``invoke``/``ainvoke`` (and their streaming forms) are the abstract methods a provider
    implements; Agno's ``Model.response``/``aresponse`` wrap them with its retries, metrics
    and message handling, which stay in the measured path.
    """

    id: str = "fake"
    name: str = "FakeAgnoModel"
    provider: str = "bench"
    reply: str = "Noted."
    last_messages: list[Any] = field(default_factory=list)

    def _answer(self, messages: list[Any] | None) -> ModelResponse:
        self.last_messages = list(messages or [])
        return ModelResponse(role="assistant", content=self.reply)

    def invoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._answer(kwargs.get("messages"))

    async def ainvoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._answer(kwargs.get("messages"))

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[ModelResponse]:
        yield self._answer(kwargs.get("messages"))

    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelResponse]:
        yield self._answer(kwargs.get("messages"))

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]


class AgnoSide:
    """One person talking to one Agno agent, in one session stored in ``db_file``.

    Args:
        db_file: the SQLite file Agno keeps sessions, runs and memories in.
        user_id: the person (their memories are stored under it).
        session_id: the conversation.
        memories: the person's memories, stored before the first turn.
        reply: what the fake model answers.
    """

    def __init__(
        self, db_file: str, *, user_id: str, session_id: str, memories: list[str], reply: str
    ) -> None:
        self.db = SqliteDb(db_file=db_file)
        for text in memories:
            self.db.upsert_user_memory(UserMemory(memory=text, user_id=user_id, topics=["bench"]))
        self.model = FakeAgnoModel(reply=reply)
        self.user_id = user_id
        self.session_id = session_id
        self.agent = Agent(
            model=self.model,
            db=self.db,
            user_id=user_id,
            session_id=session_id,
            instructions="You are a concise helper.",
            add_history_to_context=True,
            num_history_runs=10,
            add_memories_to_context=True,
            telemetry=False,
        )

    async def turn(self, text: str) -> str:
        """One message in, the answer out; the run is stored in the session before returning."""
        output = await self.agent.arun(text, user_id=self.user_id, session_id=self.session_id)
        return str(output.content)

    def system_prompt(self) -> str:
        """What the fake model last got as its system message (to check memories were in it)."""
        for message in self.model.last_messages:
            if getattr(message, "role", None) == "system":
                return str(message.content)
        return ""
