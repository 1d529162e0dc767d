"""The janitor: removes what has expired, a batch at a time.

Expired user memory already reads as missing; the janitor deletes the rows. It also ends
sessions idle past the timeout (so their episodes get written even if the person never
returns), drops spent link codes and old link attempts, enforces
``episodic-memory-retention-days`` per bot, and keeps handled rows only as long as
``[janitor]`` says (:class:`LogRetention`): inbox payloads, then inbox rows (never before a
platform could redeliver their event), sent replies, the turn log, whose recall index
entries (and vectors) go with each turn by the database's own triggers and generated columns,
and free-text memories nobody changed for ``[janitor] user_memories`` (off by default).

With several workers on PostgreSQL every worker runs a janitor, and one pass at a time
sweeps: it holds a transaction-level advisory lock for the pass and the others skip theirs.
Each step is idempotent anyway (a session already ended is not ended twice). Every purge is
a batch in a short transaction of its own, repeated until less than a batch is left, so a
large backlog never holds the database's write lock for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.inbox import clear_payloads_in, delete_handled_in
from mnemobot.runtime.conversations.locks import try_xact_lock
from mnemobot.runtime.conversations.outbox import delete_sent_in
from mnemobot.runtime.conversations.sessions import SessionStore
from mnemobot.runtime.memories.store import delete_stale_in
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.settings import JanitorSettings
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import (
    EPISODES,
    LINK_ATTEMPTS,
    LINK_CODES,
    TURNS,
    USER_MEMORY,
)

__all__ = ["Janitor", "LogRetention"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogRetention:
    """How long handled rows are kept, in seconds; 0 keeps them forever.

    Attributes:
        inbox_payloads: a handled event's payload (and conversation) is cleared this long
            after it was handled; the row stays, so a redelivery is still a duplicate.
        inbox_rows: the handled event's row goes this long after; keep it longer than any
            platform's redelivery window (``[janitor]`` refuses less than a day).
        outbox_sent: a sent reply's row goes this long after it was sent.
        turns: a line of the turn log goes this long after it was said, and recall with it.
        user_memories: a free-text memory nobody changed for this long goes (0: kept).
    """

    inbox_payloads: float = 0
    inbox_rows: float = 0
    outbox_sent: float = 0
    turns: float = 0
    user_memories: float = 0

    @classmethod
    def of(cls, settings: JanitorSettings) -> LogRetention:
        """The ages ``[janitor]`` configures."""
        return cls(
            settings.inbox_payloads,
            settings.inbox_rows,
            settings.outbox_sent,
            settings.turns,
            settings.user_memories,
        )


def _delete_turns_in(conn: Connection, said_before: datetime, limit: int) -> int:
    ids = (
        conn.execute(select(TURNS.c.id).where(TURNS.c.created_at <= said_before).limit(limit))
        .scalars()
        .all()
    )
    if not ids:
        return 0
    return int(conn.execute(delete(TURNS).where(TURNS.c.id.in_(ids))).rowcount)


_Purge = Callable[[Connection, datetime, int], int]
# Kinds a sweep removes a batch of at a time: sweep_all repeats while one filled its batch.
_BATCHED = (
    "sessions_ended",
    "user_memory_expired",
    "inbox_payloads",
    "inbox_rows",
    "outbox_sent",
    "turns",
    "user_memories",
)


class Janitor:
    """One sweep removes at most ``batch`` rows of each kind; call it until it reports 0."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        sessions: SessionStore,
        *,
        retention_days: Mapping[str, int],
        default_retention_days: int = 365,
        link_window: int = 600,
        batch: int = 500,
        retention: LogRetention | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sessions = sessions
        self.retention_days = dict(retention_days)
        self.default_retention_days = default_retention_days
        self.link_window = link_window
        self.batch = batch
        self.retention = retention or LogRetention()
        self.metrics = metrics
        kept = self.retention
        self._purges: list[tuple[str, float, _Purge]] = [
            ("inbox_payloads", kept.inbox_payloads, clear_payloads_in),
            ("inbox_rows", kept.inbox_rows, delete_handled_in),
            ("outbox_sent", kept.outbox_sent, delete_sent_in),
            ("turns", kept.turns, _delete_turns_in),
            ("user_memories", kept.user_memories, delete_stale_in),
        ]

    def sweep(self) -> dict[str, int]:
        """One pass; returns how many rows of each kind went."""
        now = self.clock.now()
        done = {"sessions_ended": self.sessions.expire_idle(self.batch)}
        with self.db.write() as conn:
            ids = (
                conn.execute(
                    select(USER_MEMORY.c.id)
                    .where(USER_MEMORY.c.ttl.is_not(None), USER_MEMORY.c.ttl <= now)
                    .limit(self.batch)
                )
                .scalars()
                .all()
            )
            done["user_memory_expired"] = (
                conn.execute(delete(USER_MEMORY).where(USER_MEMORY.c.id.in_(ids))).rowcount
                if ids
                else 0
            )
            done["link_codes"] = conn.execute(
                delete(LINK_CODES).where(
                    or_(LINK_CODES.c.expires_at <= now, LINK_CODES.c.used_at.is_not(None))
                )
            ).rowcount
            done["link_attempts"] = conn.execute(
                delete(LINK_ATTEMPTS).where(
                    LINK_ATTEMPTS.c.attempted_at <= now - timedelta(seconds=self.link_window)
                )
            ).rowcount
            episodes = 0
            for bot, days in self.retention_days.items():
                episodes += conn.execute(
                    delete(EPISODES).where(
                        EPISODES.c.bot == bot, EPISODES.c.created_at <= now - timedelta(days=days)
                    )
                ).rowcount
            episodes += conn.execute(
                delete(EPISODES).where(
                    EPISODES.c.bot.not_in(list(self.retention_days)),
                    EPISODES.c.created_at <= now - timedelta(days=self.default_retention_days),
                )
            ).rowcount
            done["episodes"] = episodes
        for kind, age, purge in self._purges:
            if not age:
                done[kind] = 0
                continue
            with self.db.write() as conn:  # one short transaction per batch and kind
                done[kind] = purge(conn, now - timedelta(seconds=age), self.batch)
        return done

    def sweep_all(self, max_passes: int = 100) -> dict[str, int]:
        """Sweep until nothing is left (bounded, so a flood cannot loop forever).

        On PostgreSQL, nothing when another worker's janitor is sweeping right now.
        """
        if self.db.dialect.one_writer:  # one process; a second write transaction would wait
            return self._sweep_all(max_passes)
        with self.db.write() as conn:
            if not try_xact_lock(conn, "janitor"):
                logger.debug("janitor pass skipped: another worker is sweeping")
                return {}
            return self._sweep_all(max_passes)

    def end_idle_sessions(self, max_passes: int = 100) -> int:
        """End every session idle past the timeout, and do nothing else of a sweep.

        ``mnemobot prompt`` shows the episodes a running deployment would have written, so it
        ends idle sessions first; a sweep would also purge what retention has aged out, and a
        preview run on a copy of old data would delete the very history it was asked to show.
        """
        ended = 0
        for _ in range(max_passes):
            count = self.sessions.expire_idle(self.batch)
            ended += count
            if count < self.batch:
                break
        return ended

    def _sweep_all(self, max_passes: int) -> dict[str, int]:
        total: dict[str, int] = {}
        for _ in range(max_passes):
            counts = self.sweep()
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
            if all(counts[kind] < self.batch for kind in _BATCHED):
                break
        return total

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Sweep every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                counts = await self.db.run(self.sweep_all)
                if any(counts.values()):
                    logger.info("janitor swept: %s", counts)
                if self.metrics is not None:
                    self.metrics.janitor_swept(counts)
            except Exception as exc:
                logger.exception("janitor sweep failed; will retry")
                if self.metrics is not None:
                    self.metrics.janitor_failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
