"""Replies committed with their turn, then sent and marked, so none is lost or sent twice.

A reply is claimed while someone sends it (``claimed_at``, the idempotency record several
workers share): the worker that committed the turn claims its replies in that same commit
and sends them at once; it gives the claim back when a send fails, so the reply can be
taken again. A reply still unsent when its claim is older than the lease (its worker died
between commit and send) is claimed by a reclaimer and sent; ``sent`` ends it for good.
The one gap no platform closes: a worker killed after the platform took a reply and before
it was marked sent, whose reply is sent again after the lease.

A sent reply is kept ``[janitor] outbox_sent`` long (its text is in the turn log too), then
the janitor deletes it (:func:`delete_sent_in`); unsent replies are never purged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.inbox import FORGOTTEN
from mnemobot.runtime.messages import OutboundMessage
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import INBOX, OUTBOX

__all__ = ["OutboxStore", "delete_sent_in"]

_t = OUTBOX


def delete_sent_in(conn: Connection, sent_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` replies sent before ``sent_before``; returns how many."""
    ids = (
        conn.execute(
            select(_t.c.id)
            .where(
                _t.c.status == "sent",
                _t.c.created_at
                <= sent_before,  # implied by sent_at; the (status, created_at) index
                _t.c.sent_at <= sent_before,
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    return int(conn.execute(delete(_t).where(_t.c.id.in_(ids))).rowcount)


class OutboxStore:
    """The replies of committed turns, and which of them have been sent."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        stamp = _t.c.created_at.type
        self._add = Prepared(
            insert(_t).values(
                id=bindparam("id"),
                inbox_id=bindparam("inbox_id"),
                channel=bindparam("channel"),
                chat_id=bindparam("chat_id"),
                user_id=bindparam("user_id"),
                bot=bindparam("bot"),
                seq=bindparam("seq"),
                text=bindparam("text"),
                status="pending",
                created_at=bindparam("now", type_=stamp),
                claimed_at=bindparam("now", type_=stamp),
            )
        )
        self._sent = Prepared(
            update(_t)
            .where(_t.c.id == bindparam("reply_id"))
            .values(status="sent", sent_at=bindparam("now", type_=stamp))
        )

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
        self._add.execute_many(
            conn,
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
                    "now": now,
                }
                for r in replies
            ],
        )

    def mark_sent(self, reply_ids: list[str]) -> None:
        """Record that these replies reached the platform."""
        if not reply_ids:
            return
        now = self.clock.now()
        with self.db.write() as conn:
            self._sent.execute_many(conn, [{"reply_id": id_, "now": now} for id_ in reply_ids])
            # The confirmation of a forget held the chat id only until it was sent.
            forgotten = select(INBOX.c.id).where(INBOX.c.status == FORGOTTEN)
            conn.execute(delete(_t).where(_t.c.id.in_(reply_ids), _t.c.inbox_id.in_(forgotten)))

    def release(self, reply_ids: list[str]) -> None:
        """Give back the claim on replies not delivered, so a later pass may send them."""
        if not reply_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(reply_ids), _t.c.status == "pending")
                .values(claimed_at=None)
            )

    def claim_unsent(
        self, channel: str, *, claimed_before: datetime, limit: int = 500
    ) -> list[OutboundMessage]:
        """Claim unsent replies nobody is sending (never claimed, given back, or claimed
        before ``claimed_before``), in the order they were committed.

        On PostgreSQL rows another worker is claiming right now are skipped.
        """
        now = self.clock.now()
        free = (
            select(_t.c.id)
            .where(
                _t.c.channel == channel,
                _t.c.status == "pending",
                or_(_t.c.claimed_at.is_(None), _t.c.claimed_at <= claimed_before),
            )
            .order_by(_t.c.created_at, _t.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.db.write() as conn:
            rows = conn.execute(
                update(_t)
                .where(_t.c.id.in_(free.scalar_subquery()), _t.c.status == "pending")
                .values(claimed_at=now)
                .returning(
                    _t.c.id,
                    _t.c.channel,
                    _t.c.chat_id,
                    _t.c.bot,
                    _t.c.text,
                    _t.c.seq,
                    _t.c.created_at,
                )
            ).all()
        ordered = sorted(rows, key=lambda r: (r.created_at, r.seq))
        return [OutboundMessage(r.id, r.channel, r.chat_id, r.bot, r.text, r.seq) for r in ordered]

    def pending_conversations(self, reply_ids: list[str]) -> dict[str, str | None]:
        """Of these replies, those still unsent, each with the conversation it answers
        (None for a reply that answers no stored event)."""
        if not reply_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                select(_t.c.id, INBOX.c.conversation)
                .select_from(_t.outerjoin(INBOX, INBOX.c.id == _t.c.inbox_id))
                .where(_t.c.id.in_(reply_ids), _t.c.status == "pending")
            ).all()
        return {row.id: row.conversation for row in rows}

    def pending(self, channel: str) -> list[OutboundMessage]:
        """Committed replies not yet sent on ``channel``, in order."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(_t)
                .where(_t.c.channel == channel, _t.c.status == "pending")
                .order_by(_t.c.created_at, _t.c.seq)
            ).all()
        return [OutboundMessage(r.id, r.channel, r.chat_id, r.bot, r.text, r.seq) for r in rows]
