"""Model usage records: tokens, cost and latency of every call, per bot and person."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, insert, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.llm.client import Usage
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.people.identity import IdentityStore
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import LLM_USAGE, new_id

__all__ = ["UsageRecorder", "UsageStore"]


class UsageStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def record(self, usage: Usage) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(LLM_USAGE).values(
                    id=new_id(),
                    user_id=usage.user_id,
                    bot=usage.bot,
                    purpose=usage.purpose,
                    model=usage.model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cost=usage.cost,
                    latency_ms=usage.latency_ms,
                    ok=usage.ok,
                    created_at=self.clock.now(),
                )
            )

    def totals(self, *, bot: str | None = None, user_id: str | None = None) -> dict[str, Any]:
        """Calls, tokens and cost so far, optionally for one bot and/or person."""
        query = select(
            func.count(),
            func.coalesce(func.sum(LLM_USAGE.c.prompt_tokens), 0),
            func.coalesce(func.sum(LLM_USAGE.c.completion_tokens), 0),
            func.coalesce(func.sum(LLM_USAGE.c.cost), 0.0),
        )
        if bot is not None:
            query = query.where(LLM_USAGE.c.bot == bot)
        if user_id is not None:
            query = query.where(LLM_USAGE.c.user_id == user_id)
        with self.db.read() as conn:
            calls, prompt, completion, cost = conn.execute(query).one()
        return {
            "calls": int(calls),
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "cost": float(cost),
        }


class UsageRecorder:
    """Where the model client reports each call (its ``on_usage``): metrics, then a row.

    A call made for a person forgotten meanwhile keeps only its totals (no user id).
    """

    def __init__(
        self, db: Database, store: UsageStore, identity: IdentityStore, metrics: Metrics
    ) -> None:
        self._db = db
        self._store = store
        self._identity = identity
        self._metrics = metrics

    async def record(self, usage: Usage) -> None:
        """Store one model call's tokens and cost."""
        self._metrics.llm_call(usage)
        if usage.user_id is not None and not await self._db.run(
            self._identity.exists, usage.user_id
        ):
            usage = replace(usage, user_id=None)
        await self._db.run(self._store.record, usage)
