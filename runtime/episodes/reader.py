"""Reading episodes: short summaries of a person's earlier conversations.

Episodes are written by the episode worker when a session ends (the LLM issue); bots read
the most recent ones through ``ctx.user.episodes()``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import EPISODES

__all__ = ["EpisodeReader"]

_e = EPISODES.c


class EpisodeReader:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._recent = Prepared(
            select(
                _e.conversation_id,
                _e.summary,
                _e.topics,
                _e.sentiment,
                _e.resolution,
                _e.created_at,
            )
            .where(_e.user_id == bindparam("user_id"))
            .order_by(_e.created_at.desc())
            .limit(bindparam("limit"))
        )

    def recent(self, user_id: str, limit: int = 2) -> list[dict[str, Any]]:
        """The newest ``limit`` episodes of ``user_id``, newest first, as the seed shows them."""
        rows = self.db.read_all(self._recent, {"user_id": user_id, "limit": limit})
        return [
            {
                "conversation_id": conversation_id,
                "summary": summary,
                "topics": topics or [],
                "sentiment": sentiment,
                "resolution": resolution,
                "created_at": created_at.isoformat(),
            }
            for conversation_id, summary, topics, sentiment, resolution, created_at in rows
        ]
