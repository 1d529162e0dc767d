"""The inbox: every platform event stored durably before it is handled, once.

The unique ``(channel, event_id)`` row is the dedupe point: a redelivered event finds its
row and stops, whether the first delivery finished or not. An event whose row is still
``received`` (the process died mid-turn) is handled again by whoever holds the
conversation next, and its turn commits the row as ``done`` with its replies.

Each row carries its conversation and ``seq``, the order rows were stored in across every
worker (a PostgreSQL sequence; the rowid order on SQLite, whose writers queue): the turn
holding a conversation answers that conversation's earlier unanswered events first, so
messages spread over several workers are still answered in the order they arrived.

Forgetting a person leaves a *tombstone* of each of their events (:func:`tombstone_in`): the
row stays, status ``forgotten``, with no payload, conversation, user or error, and its event
id replaced by a hash (a web event id holds the visitor's id). A redelivery of that event
finds the tombstone (:meth:`InboxStore.receive` looks for the hash of a new event's id) and
stops, so forget keeps the guarantee that an event is never handled twice.

Handled rows do not stay forever (the janitor, ``[janitor]`` ages): first their payload goes
(:func:`clear_payloads_in`: what the person said, their names, the raw platform event, and the
conversation, which names their account), then, once older than any platform's redelivery
window, the row with its event id (:func:`delete_handled_in`). Until then a redelivery still
finds the row and stops. Rows still ``received`` are never touched, nor rows with a reply
still waiting to be sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    exists,
    null,
    or_,
    select,
    update,
)

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.messages import InboundMessage
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import INBOX, OUTBOX, new_id

__all__ = [
    "FORGOTTEN",
    "Backlog",
    "InboxEntry",
    "InboxStore",
    "clear_payloads_in",
    "delete_handled_in",
    "tombstone_id",
    "tombstone_in",
]

_t = INBOX
FORGOTTEN = "forgotten"  # the status of a tombstone


def tombstone_id(event_id: str) -> str:
    """What a forgotten event's id becomes: a hash, enough to recognise a redelivery."""
    return "forgotten:" + hashlib.sha256(event_id.encode()).hexdigest()[:48]


def tombstone_in(
    conn: Connection,
    user_id: str,
    accounts: Collection[tuple[str, str]],
    now: datetime,
) -> list[str]:
    """Turn every inbox row of a person into a tombstone; returns their ids.

    A row is theirs when its turn committed it for ``user_id``, or, still without a user
    (unanswered, or its turn failed before identifying them), when its message came from one
    of their ``accounts`` (``(channel_kind, external_id)``): an unanswered event would
    otherwise be answered after the forget and create the person again.
    """
    theirs: list[tuple[str, str]] = [
        (row.id, row.event_id)
        for row in conn.execute(select(_t.c.id, _t.c.event_id).where(_t.c.user_id == user_id))
    ]
    if accounts:
        loose = conn.execute(
            select(_t.c.id, _t.c.event_id, _t.c.payload).where(
                _t.c.user_id.is_(None), _t.c.payload.is_not(None)
            )
        )
        theirs += [
            (row.id, row.event_id)
            for row in loose
            if isinstance(row.payload, dict)
            and (row.payload.get("channel_kind"), row.payload.get("external_user_id")) in accounts
        ]
    for inbox_id, event_id in theirs:
        conn.execute(
            update(_t)
            .where(_t.c.id == inbox_id)
            .values(
                event_id=tombstone_id(event_id),
                payload=null(),  # SQL NULL, as the janitor clears payloads
                user_id=None,
                conversation=None,
                error=None,
                status=FORGOTTEN,
                handled_at=now,
                claimed_at=None,
            )
        )
    return [inbox_id for inbox_id, _ in theirs]


def _no_reply_pending() -> ColumnElement[bool]:
    return ~exists().where(OUTBOX.c.inbox_id == _t.c.id, OUTBOX.c.status == "pending")


def clear_payloads_in(conn: Connection, handled_before: datetime, limit: int) -> int:
    """Clear the payload and conversation of up to ``limit`` events handled (done or failed)
    before ``handled_before``; returns how many. The row and its event id stay.

    Finds them through the partial index of rows that still hold a payload, so rows already
    cleared cost nothing on later passes.
    """
    ids = (
        conn.execute(
            select(_t.c.id)
            .where(
                _t.c.payload.is_not(None),
                _t.c.handled_at <= handled_before,
                _t.c.status.in_(("done", "failed")),
                _no_reply_pending(),
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    # null(): SQL NULL, which leaves the partial index; a bare None would store JSON null.
    conn.execute(update(_t).where(_t.c.id.in_(ids)).values(payload=null(), conversation=None))
    return len(ids)


def delete_handled_in(conn: Connection, handled_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` events handled (done, failed or forgotten) before
    ``handled_before``; returns how many. A redelivery of one is then a new event: the
    caller keeps ``handled_before`` older than any platform's redelivery window.
    """
    ids = (
        conn.execute(
            select(_t.c.id)
            .where(
                _t.c.status.in_(("done", "failed", FORGOTTEN)),
                # implied by handled_at (an event is handled after it is received); lets
                # the (status, received_at) index find them
                _t.c.received_at <= handled_before,
                _t.c.handled_at <= handled_before,
                _no_reply_pending(),
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    return int(conn.execute(delete(_t).where(_t.c.id.in_(ids))).rowcount)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: str
    status: str
    is_new: bool
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a turn finds once it holds its conversation (see :meth:`InboxStore.backlog`).

    ``earlier``: events of the conversation stored before this one and still unanswered,
    oldest first; ``own_status``: this event's status now (another worker may have answered
    it meanwhile).
    """

    own_status: str
    earlier: list[tuple[InboxEntry, InboundMessage]]


class InboxStore:
    """Stores inbound events and records how their turn ended."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        next_seq = db.dialect.next_in_sequence("inbox_seq", _t.name)
        insert = (
            db.dialect.insert(_t)
            .values(
                id=bindparam("id"),
                channel=bindparam("channel"),
                event_id=bindparam("event_id"),
                payload=bindparam("payload", type_=_t.c.payload.type),
                status="received",
                received_at=bindparam("now", type_=_t.c.received_at.type),
                conversation=bindparam("conversation"),
                seq=next_seq,
            )
            .on_conflict_do_nothing(index_elements=["channel", "event_id"])
            .returning(_t.c.id, _t.c.seq)
        )
        self._insert = Prepared(insert)
        self._find = Prepared(
            select(_t.c.id, _t.c.status, _t.c.seq).where(
                _t.c.channel == bindparam("channel"), _t.c.event_id == bindparam("event_id")
            )
        )
        backlog_columns = (_t.c.id, _t.c.status, _t.c.seq, _t.c.payload)
        self._own = Prepared(select(*backlog_columns).where(_t.c.id == bindparam("id")))
        self._backlog = Prepared(
            select(*backlog_columns).where(
                or_(
                    _t.c.id == bindparam("id"),
                    (_t.c.conversation == bindparam("conversation"))
                    & (_t.c.status == "received")
                    & (_t.c.seq < bindparam("seq")),
                )
            )
        )
        self._finish = Prepared(
            update(_t)
            .where(_t.c.id == bindparam("inbox_id"))
            .values(
                status=bindparam("status"),
                error=bindparam("error"),
                user_id=bindparam("user_id"),
                handled_at=bindparam("now", type_=_t.c.handled_at.type),
            )
        )

    def receive(self, msg: InboundMessage) -> InboxEntry:
        """Store ``msg`` unless its event id was seen on this channel before."""
        inbox_id = new_id()
        params = {"channel": msg.channel, "event_id": msg.event_id}
        with self.db.write() as conn:
            # RETURNING, not rowcount: psycopg reports 1 for a DO NOTHING that did nothing.
            inserted = self._insert.first(
                conn,
                {
                    **params,
                    "id": inbox_id,
                    "payload": dataclasses.asdict(msg),
                    "now": self.clock.now(),
                    "conversation": msg.conversation,
                },
            )
            if inserted is not None:
                forgotten = self._find.first(
                    conn, {"channel": msg.channel, "event_id": tombstone_id(msg.event_id)}
                )
                if forgotten is None:
                    return InboxEntry(inbox_id, "received", is_new=True, seq=inserted[1])
                conn.execute(delete(_t).where(_t.c.id == inbox_id))  # seen, then forgotten
                return InboxEntry(forgotten[0], FORGOTTEN, is_new=False, seq=forgotten[2])
            row = self._find.first(conn, params)
            assert row is not None  # the conflict that stopped the insert is this row
            return InboxEntry(row[0], row[1], is_new=False, seq=row[2])

    def backlog(self, conversation: str, entry: InboxEntry) -> Backlog:
        """This event's status, and the conversation's unanswered events stored before it.

        Called with the conversation held, so no other turn of it runs: an earlier event
        still ``received`` waits for the lock in another worker (which will find it done)
        or was left by a worker that died. One query either way.
        """
        if entry.seq is None:
            rows = self.db.read_all(self._own, {"id": entry.id})
        else:
            params = {"id": entry.id, "conversation": conversation, "seq": entry.seq}
            rows = self.db.read_all(self._backlog, params)
        own = "received"
        earlier: list[tuple[int, InboxEntry, InboundMessage]] = []
        for row_id, status, seq, payload in rows:
            if row_id == entry.id:
                own = status
            else:
                earlier.append(
                    (
                        seq,
                        InboxEntry(row_id, status, is_new=False, seq=seq),
                        InboundMessage(**payload),
                    )
                )
        earlier.sort(key=lambda item: item[0])
        return Backlog(own, [(found, msg) for _, found, msg in earlier])

    def status(self, inbox_id: str) -> str:
        with self.db.read() as conn:
            return str(conn.execute(select(_t.c.status).where(_t.c.id == inbox_id)).scalar_one())

    def finish_in(
        self, conn: Connection, inbox_id: str, *, user_id: str | None, error: str | None = None
    ) -> None:
        """Mark the event handled, inside the turn's transaction."""
        self._finish.execute(
            conn,
            {
                "inbox_id": inbox_id,
                "status": "failed" if error else "done",
                "error": error,
                "user_id": user_id,
                "now": self.clock.now(),
            },
        )

    def unfinished(self, channel: str | None = None, limit: int = 100) -> list[InboundMessage]:
        """Events stored but never answered (e.g. the process stopped mid-turn), oldest first."""
        query = select(_t.c.payload).where(_t.c.status == "received")
        if channel is not None:
            query = query.where(_t.c.channel == channel)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_t.c.received_at).limit(limit)).scalars().all()
        return [InboundMessage(**payload) for payload in rows]

    def claim_stale(
        self, channel: str, *, older_than: datetime, limit: int = 100
    ) -> list[InboundMessage]:
        """Take over events still unanswered since before ``older_than`` (their worker died).

        Each is claimed (``claimed_at``) so that other workers' reclaimers skip it until
        ``older_than`` passes the claim too; on PostgreSQL rows another reclaimer is
        claiming right now are skipped (``FOR UPDATE SKIP LOCKED``). Oldest first.
        """
        now = self.clock.now()
        stale = (
            select(_t.c.id)
            .where(
                _t.c.status == "received",
                _t.c.channel == channel,
                _t.c.received_at <= older_than,
                or_(_t.c.claimed_at.is_(None), _t.c.claimed_at <= older_than),
            )
            .order_by(_t.c.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.db.write() as conn:
            rows = conn.execute(
                update(_t)
                .where(_t.c.id.in_(stale.scalar_subquery()), _t.c.status == "received")
                .values(claimed_at=now)
                .returning(_t.c.seq, _t.c.received_at, _t.c.payload)
            ).all()
        ordered = sorted(rows, key=lambda row: (row.received_at, row.seq or 0))
        return [InboundMessage(**row.payload) for row in ordered]
