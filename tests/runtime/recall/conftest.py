"""Semantic recall's runtimes: a bots folder, a model and an embedding model on FakeOpenAI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.answers import assemble_prompt
from mnemobot.runtime.llm.prompt import BuiltPrompt
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.search import Recall
from tests.fakes.openai_api import FakeOpenAI

SemanticRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def semantic_runtime(
    db_url: str, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[SemanticRuntime]:
    """Starts runtimes on ``tmp_path / "bots"`` whose model and embedding model are served by
    ``fake`` (an ``[llm]`` alias names the embedding model and where it is served);
    ``embedding=False`` leaves embeddings off; other keywords are settings sections. Each is
    stopped after the test."""
    started: list[Runtime] = []

    async def start(fake: FakeOpenAI, *, embedding: bool = True, **sections: Any) -> Runtime:
        settings = fake.settings(
            {"url": db_url}, tmp_path / "bots", embedding="embedder" if embedding else None,
            **sections,
        )  # fmt: skip
        runtime = build_runtime(settings, clock=clock)
        await runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


async def prompt_with(
    runtime: Runtime, bot_name: str, user_id: str, question: str, recall: Recall
) -> BuiltPrompt:
    """The prompt ``bot_name`` would send ``user_id`` for ``question``, recalling with
    ``recall`` (the runtime's, or one without embeddings to compare)."""
    bot = runtime.bots.get(bot_name)
    memory = runtime.memory
    return await assemble_prompt(
        db=runtime.db,
        llm=runtime.llm,
        llm_settings=runtime.settings.llm,
        bot=bot,
        user_memory=MemoryScope(memory, memory.user_ref(user_id, runtime.user_policy(bot))),
        context=None,
        session_id=None,
        recall=recall,
        user_id=user_id,
        memory_budget=1500,
        question=question,
    )
