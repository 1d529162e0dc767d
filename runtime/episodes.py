"""Reading episodes: short summaries of a person's earlier conversations.

Episodes are written by the episode worker when a session ends (the LLM issue); bots read
the most recent ones through ``ctx.user.episodes()``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from runtime.storage.database import Database
from runtime.storage.tables import EPISODES

__all__ = ["EpisodeReader"]

_e = EPISODES.c


class EpisodeReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    def recent(self, user_id: str, limit: int = 2) -> list[dict[str, Any]]:
        """The newest ``limit`` episodes of ``user_id``, newest first, as the seed shows them."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    _e.conversation_id,
                    _e.summary,
                    _e.topics,
                    _e.sentiment,
                    _e.resolution,
                    _e.created_at,
                )
                .where(_e.user_id == user_id)
                .order_by(_e.created_at.desc())
                .limit(limit)
            ).mappings()
            return [
                {**row, "created_at": row["created_at"].isoformat(), "topics": row["topics"] or []}
                for row in rows
            ]
