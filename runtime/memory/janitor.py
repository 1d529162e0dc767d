"""The janitor: removes what has expired, a batch at a time.

Expired user memory already reads as missing; the janitor deletes the rows. It also ends
sessions idle past the timeout (so their episodes get written even if the person never
returns), drops spent link codes and old link attempts, and enforces
``episodic-memory-retention-days`` per bot.

With several workers on PostgreSQL every worker runs a janitor, and one pass at a time
sweeps: it holds a transaction-level advisory lock for the pass and the others skip theirs.
Each step is idempotent anyway (a session already ended is not ended twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import delete, or_, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.locks import try_xact_lock
from mnemobot.runtime.conversations.sessions import SessionStore
from mnemobot.runtime.ops.metrics import Metrics
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import EPISODES, LINK_ATTEMPTS, LINK_CODES, USER_MEMORY

__all__ = ["Janitor"]

logger = logging.getLogger(__name__)


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
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sessions = sessions
        self.retention_days = dict(retention_days)
        self.default_retention_days = default_retention_days
        self.link_window = link_window
        self.batch = batch
        self.metrics = metrics

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

    def _sweep_all(self, max_passes: int) -> dict[str, int]:
        total: dict[str, int] = {}
        for _ in range(max_passes):
            counts = self.sweep()
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
            if counts["sessions_ended"] < self.batch and counts["user_memory_expired"] < self.batch:
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
