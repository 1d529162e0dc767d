"""``episodic-memory-max-episodes`` kept by rolling the oldest episodes up, never dropping them.

Kept apart from :mod:`runtime.episode_worker` because it is a step of its own, run after the
episode's job is already done, with its own failure rule: when the model cannot combine the
oldest episodes they are kept as they are (a warning, not an error) and the roll-up is tried
again after the next episode; the job is never failed or repeated for it. It shares only the
question to the model with the worker, which hands it in as ``ask``.

The oldest episodes, enough that with the roll-up the maximum remain, are replaced by one
episode in one transaction; ``details.rolled_up`` counts the conversations inside (a
roll-up of roll-ups adds them up), and the roll-up takes the place in time of the newest
episode it replaces. If one of them is gone meanwhile (rolled up by another worker,
forgotten, expired) nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select

from mnemobot.runtime.bots.registry import Bot
from mnemobot.runtime.episodes.jobs import LostLease
from mnemobot.runtime.episodes.prompts import ROLLUP_RULES, EpisodeSummary, quoted
from mnemobot.runtime.errors import LLMError
from mnemobot.runtime.llm.structured import InvalidAnswer
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import EPISODES, new_id

__all__ = ["AskForSummary", "EpisodeRollup"]

logger = logging.getLogger(__name__)

_e = EPISODES.c

AskForSummary = Callable[[Bot, str | None, list[dict[str, str]]], Awaitable[EpisodeSummary]]
"""Asks the bot's episodic-memory model for a summary of ``messages`` on behalf of a user.

Raises LLMError when the model is down and InvalidAnswer when its answers stay invalid.
"""


@dataclass(frozen=True, slots=True)
class _Stored:
    """An episode as stored, with what a roll-up reads of it."""

    id: str
    conversation_id: str
    summary: str
    topics: tuple[str, ...]
    sentiment: str | None
    resolution: str | None
    details: dict[str, Any]
    created_at: datetime

    @property
    def rolled_up(self) -> int:
        """How many conversations this episode covers (a roll-up covers several)."""
        return int(self.details.get("rolled_up", 1))

    def shown(self) -> dict[str, Any]:
        """What the model is shown of it, as JSON."""
        return {
            "when": self.created_at.isoformat(),
            "summary": self.summary,
            "topics": list(self.topics),
            "sentiment": self.sentiment,
            "resolution": self.resolution,
            "decisions": self.details.get("decisions", []),
            "action_items": self.details.get("action_items", []),
        }


class EpisodeRollup:
    """Rolls the oldest episodes of a person with a bot into one when over the maximum.

    Args:
        db: the database.
        ask: how to ask the model for a summary (the worker's, so roll-ups and episodes
            use the same model, validation and retries).
    """

    def __init__(self, db: Database, ask: AskForSummary) -> None:
        self.db = db
        self.ask = ask

    async def enforce_max_episodes(self, user_id: str, bot: Bot) -> int:
        """Roll the oldest episodes of ``user_id`` with ``bot`` into one when over the maximum.

        Returns how many episodes were rolled up (0 when under the limit or when the model
        failed: then they are kept, and the next call tries again).
        """
        limit = max(1, bot.options.episodic_memory_max_episodes)
        oldest = await self.db.run(self._over_limit, user_id, bot.name, limit)
        if len(oldest) < 2:
            return 0
        shown = [e.shown() for e in oldest]
        messages = [
            {"role": "system", "content": ROLLUP_RULES.replace("{bot}", bot.name)},
            {"role": "user", "content": quoted("episodes", shown)},
        ]
        try:
            summary = await self.ask(bot, user_id, messages)
        except (LLMError, InvalidAnswer) as exc:
            logger.warning(
                "could not roll up %d episodes of user %s with %s (kept; retried after the "
                "next episode): %s",
                len(oldest),
                user_id,
                bot.name,
                exc,
            )
            return 0
        rolled = await self.db.run(self._store_rollup, user_id, bot, oldest, summary.redacted())
        return len(oldest) if rolled else 0

    def _over_limit(self, user_id: str, bot: str, limit: int) -> list[_Stored]:
        """The oldest episodes to merge so that, with the roll-up, ``limit`` remain."""
        mine = and_(_e.user_id == user_id, _e.bot == bot)
        with self.db.read() as conn:
            count = conn.execute(select(func.count()).select_from(EPISODES).where(mine)).scalar()
            excess = int(count or 0) - limit
            if excess <= 0:
                return []
            rows = conn.execute(
                select(
                    _e.id,
                    _e.conversation_id,
                    _e.summary,
                    _e.topics,
                    _e.sentiment,
                    _e.resolution,
                    _e.details,
                    _e.created_at,
                )
                .where(mine)
                .order_by(_e.created_at, _e.id)
                .limit(excess + 1)
            ).all()
            return [
                _Stored(
                    id=r.id,
                    conversation_id=r.conversation_id,
                    summary=r.summary,
                    topics=tuple(r.topics or ()),
                    sentiment=r.sentiment,
                    resolution=r.resolution,
                    details=dict(r.details or {}),
                    created_at=r.created_at,
                )
                for r in rows
            ]

    def _store_rollup(
        self, user_id: str, bot: Bot, oldest: list[_Stored], summary: EpisodeSummary
    ) -> bool:
        ids = [e.id for e in oldest]
        details = {
            "rolled_up": sum(e.rolled_up for e in oldest),
            "episode_ids": ids,
            "conversation_ids": [e.conversation_id for e in oldest],
            "from": oldest[0].created_at.isoformat(),
            "to": oldest[-1].created_at.isoformat(),
            "decisions": summary.decisions,
            "action_items": summary.action_items,
            "model": bot.options.episodic_memory_model,
        }
        try:
            with self.db.write() as conn:
                gone = conn.execute(delete(EPISODES).where(_e.id.in_(ids))).rowcount
                if gone != len(ids):
                    raise LostLease("episodes changed while rolling them up")
                conn.execute(
                    insert(EPISODES).values(
                        id=new_id(),
                        user_id=user_id,
                        conversation_id=new_id(),
                        bot=bot.name,
                        summary=summary.summary,
                        topics=summary.topics,
                        sentiment=summary.sentiment,
                        resolution=summary.resolution,
                        details=details,
                        created_at=oldest[-1].created_at,  # keeps its place in time
                    )
                )
        except LostLease:
            logger.info("episodes of user %s changed during a roll-up; left as they are", user_id)
            return False
        return True
