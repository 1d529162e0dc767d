"""Replies committed with their turn, then sent and marked, so none is lost or sent twice."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from runtime.clock import Clock
from runtime.messages import OutboundMessage
from runtime.storage.database import Database
from runtime.storage.tables import OUTBOX

__all__ = ["OutboxStore"]

_t = OUTBOX


class OutboxStore:
    """The replies of committed turns, and which of them have been sent."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def add_in(
        self,
        conn: Connection,
        replies: list[OutboundMessage],
        *,
        inbox_id: str | None,
        user_id: str | None,
    ) -> None:
        if not replies:
            return
        now = self.clock.now()
        conn.execute(
            insert(_t),
            [
                {
                    "id": r.id,
                    "inbox_id": inbox_id,
                    "channel": r.channel,
                    "chat_id": r.chat_id,
                    "user_id": user_id,
                    "bot": r.bot,
                    "seq": r.seq,
                    "text": r.text,
                    "status": "pending",
                    "created_at": now,
                }
                for r in replies
            ],
        )

    def mark_sent(self, reply_ids: list[str]) -> None:
        """Record that these replies reached the platform."""
        if not reply_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(reply_ids))
                .values(status="sent", sent_at=self.clock.now())
            )

    def pending(self, channel: str) -> list[OutboundMessage]:
        """Committed replies not yet sent on ``channel``, in order."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(_t)
                .where(_t.c.channel == channel, _t.c.status == "pending")
                .order_by(_t.c.created_at, _t.c.seq)
            ).all()
        return [OutboundMessage(r.id, r.channel, r.chat_id, r.bot, r.text, r.seq) for r in rows]
