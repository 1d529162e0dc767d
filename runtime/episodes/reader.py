"""Reading episodes: short summaries of a person's earlier conversations.

Episodes are written by the episode worker when a session ends (the LLM issue); bots read
the most recent ones through ``ctx.user.episodes()`` and BASIC's
``GET USER MEMORY("recent_episodes")``, as plain dicts (:meth:`EpisodeRecord.as_dict`, the
seed's shape), converted where the bot context is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import EPISODES

__all__ = ["EpisodeReader", "EpisodeRecord"]

_e = EPISODES.c


@dataclass(frozen=True, slots=True)
class EpisodeRecord:
    """One episode as bots read it: what a finished conversation was about, and how it went."""

    conversation_id: str
    summary: str
    topics: tuple[str, ...]
    sentiment: str | None
    resolution: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The seed's shape, as ``ctx.user.episodes()`` gives it: JSON values only."""
        return {
            "conversation_id": self.conversation_id,
            "summary": self.summary,
            "topics": list(self.topics),
            "sentiment": self.sentiment,
            "resolution": self.resolution,
            "created_at": self.created_at.isoformat(),
        }


class EpisodeReader:
    """The newest episodes of a person, for bots and prompts."""

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

    def recent(self, user_id: str, limit: int = 2) -> list[EpisodeRecord]:
        """The newest ``limit`` episodes of ``user_id``, newest first."""
        rows = self.db.read_all(self._recent, {"user_id": user_id, "limit": limit})
        return [
            EpisodeRecord(
                conversation_id=conversation_id,
                summary=summary,
                topics=tuple(topics or ()),
                sentiment=sentiment,
                resolution=resolution,
                created_at=created_at,
            )
            for conversation_id, summary, topics, sentiment, resolution, created_at in rows
        ]
