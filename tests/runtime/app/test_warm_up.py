"""`mnemobot run` imports litellm before it listens whenever anything will call it.

The import takes seconds of CPU; left to the first turn, it would stall the event loop and
every webhook waiting on it. A deployment of code-only bots with embeddings through litellm
has no chat model to warm, so its embedder is warmed instead; one with neither imports
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.app.deployment import warm_up
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.recall.embedding import LiteLLMEmbedder
from mnemobot.runtime.settings import load_settings
from tests.support import write_bot


def _runtime(db_url: str, tmp_path: Path, clock: ManualClock, **sections: Any) -> Any:
    write_bot(tmp_path / "bots", "helper", bot_py="async def on_message(ctx):\n    pass\n")
    settings = load_settings(
        None, database={"url": db_url}, bots={"dir": str(tmp_path / "bots")}, **sections
    )
    return build_runtime(settings, clock=clock)


def test_embeddings_without_a_chat_model_warm_the_embedder(
    db_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    runtime = _runtime(
        db_url, tmp_path, clock, memory={"embedding": "openai/text-embedding-3-small"}
    )
    embedder = runtime.recall.embedder
    assert runtime.llm is None and isinstance(embedder, LiteLLMEmbedder)
    assert embedder._module is None  # nothing imported by building the runtime

    warm_up(runtime)

    assert embedder._module is not None


def test_a_chat_model_is_warmed_and_no_model_imports_nothing(
    db_url: str, tmp_path: Path, clock: ManualClock
) -> None:
    with_model = _runtime(db_url, tmp_path, clock, llm={"default": "openai/gpt-4o-mini"})
    assert isinstance(with_model.llm, LiteLLM) and with_model.llm._litellm is None
    warm_up(with_model)
    assert with_model.llm._litellm is not None

    nothing = _runtime(db_url, tmp_path, clock)
    assert nothing.llm is None and nothing.recall.embedder is None
    warm_up(nothing)  # code-only bots, lexical recall: nothing to import, nothing fails


def test_an_embedding_model_without_its_key_is_named_at_start_up_and_on_each_failure(
    db_url: str, tmp_path: Path, clock: ManualClock, monkeypatch: Any, caplog: Any
) -> None:
    # The first hour: `embedding = "openai/text-embedding-3-small"` and no key exported.
    # litellm stops before asking anyone and says only "InternalServerError"; what to fix
    # is the variable, so that is what the log says, at start-up and when a query fails.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    runtime = _runtime(
        db_url, tmp_path, clock, memory={"embedding": "openai/text-embedding-3-small"}
    )
    embedder = runtime.recall.embedder
    assert isinstance(embedder, LiteLLMEmbedder)

    with caplog.at_level(logging.WARNING):
        warm_up(runtime)
    assert (
        "[memory] embedding: model openai/text-embedding-3-small needs OPENAI_API_KEY, which is "
        "not set; recall stays lexical until it is"
    ) in caplog.messages

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(embedder.embed_query("where do I work?")) is None  # lexical, no error
    [warning] = caplog.messages
    assert warning.endswith(
        "embedding model openai/text-embedding-3-small: OPENAI_API_KEY is not set"
    ), warning

    monkeypatch.setenv("OPENAI_API_KEY", "sk-set")
    assert embedder.key_warnings() == []
