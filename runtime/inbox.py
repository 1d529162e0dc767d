"""The inbox: every platform event stored durably before it is handled, once.

The unique ``(channel, event_id)`` row is the dedupe point: a redelivered event finds its
row and stops, whether the first delivery finished or not. An event whose row is still
``received`` (the process died mid-turn) is handled again by whoever holds the
conversation next, and its turn commits the row as ``done`` with its replies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runtime.clock import Clock
from runtime.messages import InboundMessage
from runtime.storage.database import Database
from runtime.storage.tables import INBOX, new_id

__all__ = ["InboxEntry", "InboxStore"]

_t = INBOX


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: str
    status: str
    is_new: bool


class InboxStore:
    """Stores inbound events and records how their turn ended."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        insert_fn = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._insert = (
            insert_fn(_t)
            .values(
                id=bindparam("id"),
                channel=bindparam("channel"),
                event_id=bindparam("event_id"),
                payload=bindparam("payload", type_=_t.c.payload.type),
                status="received",
                received_at=bindparam("now", type_=_t.c.received_at.type),
            )
            .on_conflict_do_nothing(index_elements=["channel", "event_id"])
            .returning(_t.c.id)
        )
        self._find = select(_t.c.id, _t.c.status).where(
            _t.c.channel == bindparam("channel"), _t.c.event_id == bindparam("event_id")
        )

    def receive(self, msg: InboundMessage) -> InboxEntry:
        """Store ``msg`` unless its event id was seen on this channel before."""
        inbox_id = new_id()
        params = {"channel": msg.channel, "event_id": msg.event_id}
        with self.db.write() as conn:
            # RETURNING, not rowcount: psycopg reports 1 for a DO NOTHING that did nothing.
            inserted = conn.execute(
                self._insert,
                {
                    **params,
                    "id": inbox_id,
                    "payload": dataclasses.asdict(msg),
                    "now": self.clock.now(),
                },
            ).first()
            if inserted is not None:
                return InboxEntry(inbox_id, "received", is_new=True)
            row = conn.execute(self._find, params).one()
            return InboxEntry(row.id, row.status, is_new=False)

    def status(self, inbox_id: str) -> str:
        with self.db.read() as conn:
            return str(conn.execute(select(_t.c.status).where(_t.c.id == inbox_id)).scalar_one())

    def finish_in(
        self, conn: Connection, inbox_id: str, *, user_id: str | None, error: str | None = None
    ) -> None:
        """Mark the event handled, inside the turn's transaction."""
        conn.execute(
            update(_t)
            .where(_t.c.id == inbox_id)
            .values(
                status="failed" if error else "done",
                error=error,
                user_id=user_id,
                handled_at=self.clock.now(),
            )
        )

    def unfinished(self, channel: str | None = None, limit: int = 100) -> list[InboundMessage]:
        """Events stored but never answered (e.g. the process stopped mid-turn), oldest first."""
        query = select(_t.c.payload).where(_t.c.status == "received")
        if channel is not None:
            query = query.where(_t.c.channel == channel)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_t.c.received_at).limit(limit)).scalars().all()
        return [InboundMessage(**payload) for payload in rows]
