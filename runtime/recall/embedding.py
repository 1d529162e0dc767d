"""Optional semantic recall: texts to vectors, through litellm's embedding API or in process.

``[memory] embedding`` names a litellm embedding model, or an ``[llm]`` alias whose table says
the model, ``api_base``, ``api_key_env`` and ``timeout`` (a local server, say), or ``"local"``:
all-MiniLM-L6-v2 in this process (:mod:`recall.local_embedding`, the local-embeddings extra).
Either is an :class:`Embedder`; unset, nothing here is built and recall is lexical only.
Vectors of turns, episodes, facts (and their earlier values) and free-text memories are
computed by the episode worker (:class:`VectorFiller`: after a session ends, and in its
catch-up passes), never on the turn path; a turn embeds only its query
(:meth:`Embedder.embed_query`), and if that fails the turn goes on with lexical recall alone.
What the bots' sensitive rules hide is never sent to the model (:class:`VectorFiller`).
"""

from __future__ import annotations

import logging
import os
from array import array
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import ConfigError, LLMError
from mnemobot.runtime.llm.client import (
    LiteLLM,
    ModelRoute,
    failure_cause,
    load_litellm,
    missing_keys,
)
from mnemobot.runtime.memory.sensitive import SensitiveRule
from mnemobot.runtime.recall.local_embedding import LocalEmbedder, local_model_for
from mnemobot.runtime.settings import Settings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.vectors import PERSON_KINDS, Unembedded, VectorStore, normalised

__all__ = [
    "EMBED_BATCH",
    "QUERY_TIMEOUT",
    "Embedder",
    "LiteLLMEmbedder",
    "VectorFiller",
    "embedder_for",
]

logger = logging.getLogger(__name__)

EMBED_BATCH = 64  # texts per embedding request
QUERY_TIMEOUT = 5.0  # seconds a turn waits for its query's vector at most
QUERY_PAUSE = 30.0  # after a failed query embedding, turns go lexical-only this long
MAX_CHARS = 2000  # longer texts are cut: embedding models read a few hundred tokens


class Embedder(Protocol):
    """What recall and the episode worker need of an embedding model, whichever it is."""

    @property
    def model(self) -> str:
        """The model's name, stored with each vector: vectors of two models never meet."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[array[float]]:
        """One vector of length 1 per text, in order; LLMError when the model fails."""
        ...

    async def embed_query(self, query: str) -> array[float] | None:
        """The query's vector, or None when the model cannot give it now (recall goes
        lexical; the turn never fails for it)."""
        ...

    async def ready(self) -> None:
        """Wait until queries can be answered (a local model loaded): for one-shot commands,
        where a turn would go on lexically instead. Never raises; a failure is logged."""
        ...


class LiteLLMEmbedder:
    """Calls one embedding model through litellm; every vector it returns is normalised.

    Args:
        route: the model and where it is served (from ``[llm]``'s alias mechanism).
        clock: the time source, for the pause after a failed query embedding.
        batch: texts per request.
    """

    def __init__(self, route: ModelRoute, clock: Clock, *, batch: int = EMBED_BATCH) -> None:
        self.route = route
        self.clock = clock
        self.batch = batch
        self._paused_until: datetime | None = None
        self._module: Any = None  # litellm, once imported

    @property
    def model(self) -> str:
        """The litellm model string, as stored with each vector."""
        return self.route.model

    async def embed(
        self, texts: Sequence[str], *, seconds: float | None = None
    ) -> list[array[float]]:
        """One normalised vector per text, in order; LLMError if the model cannot be reached."""
        vectors: list[array[float]] = []
        for start in range(0, len(texts), self.batch):
            chunk = [text[:MAX_CHARS] for text in texts[start : start + self.batch]]
            vectors.extend(await self._request(chunk, seconds or self.route.timeout))
        return vectors

    async def embed_query(self, query: str) -> array[float] | None:
        """The query's vector, or None (logged) when the model fails: recall goes lexical.

        After a failure, turns do not wait on the model again for ``QUERY_PAUSE`` seconds.
        """
        now = self.clock.now()
        if not query.strip() or (self._paused_until is not None and now < self._paused_until):
            return None
        try:
            [vector] = await self.embed([query], seconds=min(QUERY_TIMEOUT, self.route.timeout))
        except LLMError as exc:
            self._paused_until = now + timedelta(seconds=QUERY_PAUSE)
            logger.warning("recall is lexical only for %.0fs: %s", QUERY_PAUSE, exc)
            return None
        self._paused_until = None
        return vector

    async def ready(self) -> None:
        """A served model is ready whenever the server is: nothing to wait for."""

    def warm_up(self) -> None:
        """Import litellm now, not on the first query (``mnemobot run``, before it listens),
        and say at start-up when the model's key is not set (each query would fail)."""
        self._litellm()
        for warning in self.key_warnings():
            logger.warning("%s", warning)

    def key_warnings(self) -> list[str]:
        """A line when the provider key variable the model needs is empty (imports litellm)."""
        missing = missing_keys(self._litellm(), self.route)
        if not missing:
            return []
        return [
            f"[memory] embedding: {self.route.describe()} needs {' and '.join(missing)}, "
            "which is not set; recall stays lexical until it is"
        ]

    def _litellm(self) -> Any:
        if self._module is None:
            self._module = load_litellm()
        return self._module

    async def _request(self, texts: list[str], seconds: float) -> list[array[float]]:
        litellm = self._litellm()
        route = self.route
        kwargs: dict[str, Any] = {"timeout": seconds}
        if route.api_base:
            kwargs["api_base"] = route.api_base
        if route.api_key_env:
            kwargs["api_key"] = os.environ.get(route.api_key_env, "")
            if not kwargs["api_key"]:
                raise LLMError(f"embedding {route.describe()}: {route.api_key_env} is not set")
        try:
            response = await litellm.aembedding(model=route.model, input=texts, **kwargs)
        except Exception as exc:
            logger.debug("embedding %s failed", route.describe(), exc_info=exc)
            cause, _ = failure_cause(litellm, exc, route)
            raise LLMError(f"embedding {route.describe()}: {cause}") from exc
        data = sorted(response.data, key=lambda item: _field(item, "index"))
        if len(data) != len(texts):
            raise LLMError(
                f"embedding {route.describe()}: {len(data)} vectors for {len(texts)} texts"
            )
        return [normalised(_field(item, "embedding")) for item in data]


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def embedder_for(settings: Settings, clock: Clock) -> Embedder | None:
    """The embedder ``[memory] embedding`` asks for, or None when it is unset (the default).

    ConfigError at start-up for a value that names no model, or ``"local"`` without its extra.
    """
    name = settings.memory.embedding
    if not name:
        return None
    local = local_model_for(name)
    if local is not None:
        return LocalEmbedder(local)
    route = LiteLLM(settings.llm).resolve(name)
    if route is None:
        raise ConfigError(
            f"memory.embedding: {name!r} names no model; give a litellm embedding model "
            '(e.g. "openai/text-embedding-3-small"), an [llm] alias with a model, or "local"'
        )
    return LiteLLMEmbedder(route, clock)


class VectorFiller:
    """Gives rows their vectors: one session's turns and episode after it ends, one person's
    facts and memories, or any row still without one.

    A fact, earlier fact value or memory that ``sensitive`` hides (a key or a value no model
    may see, :mod:`memory.sensitive`) is not sent to the model: it gets an empty vector
    (:meth:`VectorStore.put`), so it is not read again, and recall finds it by its words
    alone, as before embeddings were on.

    Args:
        db: the database.
        embedder: the embedding model.
        clock: stamps each vector.
        sensitive: what no model may see (every loaded bot's rules, ``BotRegistry.sensitive``).
    """

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        clock: Clock,
        *,
        sensitive: SensitiveRule | None = None,
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.clock = clock
        self.sensitive = sensitive or SensitiveRule()
        self.store = VectorStore()

    async def fill(
        self, *, session_id: str | None = None, user_id: str | None = None, limit: int = 500
    ) -> int:
        """Embed up to ``limit`` rows without a vector (one session's turns and episode, one
        person's facts and memories, or the oldest of any: :meth:`VectorStore.unembedded`);
        returns how many were stored. LLMError when the model fails: nothing is stored and
        the caller retries."""
        model = self.embedder.model

        def unembedded() -> list[Unembedded]:
            with self.db.read() as conn:
                return self.store.unembedded(
                    conn, model, session_id=session_id, user_id=user_id, limit=limit
                )

        pending = await self.db.run(unembedded)
        if not pending:
            return 0
        hidden = [self._hidden(item) for item in pending]
        texts = [item.text for item, kept_out in zip(pending, hidden, strict=True) if not kept_out]
        vectors = iter(await self.embedder.embed(texts) if texts else [])
        embedded = [
            (item, array("f") if kept_out else next(vectors))
            for item, kept_out in zip(pending, hidden, strict=True)
        ]

        def put() -> int:
            with self.db.write() as conn:
                return self.store.put(conn, model, embedded, self.clock.now())

        return await self.db.run(put)

    def _hidden(self, item: Unembedded) -> bool:
        """``item`` holds what no model may see: a sensitive key, or a sensitive value."""
        if item.kind not in PERSON_KINDS:
            return False  # the transcript is stored with sensitive values already hidden
        return self.sensitive.hides(item.key, item.value)
