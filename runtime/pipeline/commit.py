"""The commit of a turn: memory writes, turn log, replies to send and inbox row, all or nothing.

Kept apart from :mod:`runtime.pipeline` because it is the one place a turn touches the
database for writing, and it needs only the stores, never the bots, the model or the locks:
what a turn decided is in its :class:`~runtime.turn.Turn`, and this writes it in one
transaction before any reply leaves. A failed turn commits with ``error`` set: its memory
writes are dropped, its apology and the failed inbox row are kept. A person who asked to be
forgotten is deleted first, and only what is not theirs (the reply, the inbox row) is kept.

One committer is built by :meth:`Runtime.start` once the stores exist; the ``*_sync``
methods run on the database's threads (``Database.run``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.conversations.inbox import InboxStore
from mnemobot.runtime.conversations.outbox import OutboxStore
from mnemobot.runtime.conversations.sessions import SessionStore
from mnemobot.runtime.memory.secrets_filter import redact
from mnemobot.runtime.memory.sensitive import masker
from mnemobot.runtime.memory.store import MemoryStore
from mnemobot.runtime.messages import OutboundMessage, TurnResult
from mnemobot.runtime.people.privacy import forget_user_in
from mnemobot.runtime.pipeline.turn import Turn
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import TURNS, new_id

__all__ = ["TurnCommitter"]

# A line's place in its session (recall reads a hit's neighbours by it): one past the
# session's last line, found as the row is written, so a turn's rows, written one after the
# other, number on from each other. A conversation's turns commit one at a time (its lock).
_SESSION = bindparam("session_id", type_=TURNS.c.session_id.type)
_NEXT_LINE = (
    select(func.coalesce(func.max(TURNS.c.line) + 1, 0))
    .where(TURNS.c.session_id == _SESSION)
    .scalar_subquery()
)
_INSERT_TURN = Prepared(
    insert(TURNS).values(
        {
            c.name: _NEXT_LINE if c is TURNS.c.line else bindparam(c.name, type_=c.type)
            for c in TURNS.c
        }
    )
)


def _outbound(turn: Turn) -> list[OutboundMessage]:
    return [
        OutboundMessage(new_id(), turn.msg.channel, turn.msg.chat_id, bot, text, seq)
        for seq, (bot, text) in enumerate(turn.state.replies)
    ]


class TurnCommitter:
    """Writes what a turn decided, and sets ``turn.result`` to the committed replies.

    Args:
        db: the started database.
        clock: the time source of the turn log and of memory writes.
        memory: where the turn's pending writes are applied.
        sessions: the session's active bot, dialog state and end are kept here.
        inbox: the event's row, finished in the same transaction.
        outbox: the replies, committed before any is sent.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        memory: MemoryStore,
        sessions: SessionStore,
        inbox: InboxStore,
        outbox: OutboxStore,
    ) -> None:
        self.db = db
        self.clock = clock
        self.memory = memory
        self.sessions = sessions
        self.inbox = inbox
        self.outbox = outbox

    async def commit(self, turn: Turn, *, error: str | None) -> None:
        """Commit ``turn``; with ``error`` its memory writes are dropped and its event failed."""
        replies = _outbound(turn)
        await self.db.run(self._commit_sync, turn, replies, error)
        assert turn.user is not None
        turn.result = TurnResult(replies, user_id=turn.user.user_id, bot=turn.state.active_bot)

    def _commit_sync(self, turn: Turn, replies: list[OutboundMessage], error: str | None) -> None:
        assert turn.user is not None and turn.session is not None and turn.inbox is not None
        now = self.clock.now()
        user_id = turn.user.user_id
        session = turn.session
        mask = masker(turn.hidden_texts)
        rows: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "session_id": session.id,
                "user_id": user_id,
                "bot": turn.addressed_bot,
                "role": "user",
                "seq": 0,
                "text": redact(
                    mask(turn.msg.text if turn.logged_text is None else turn.logged_text)
                ),
                "event_id": turn.msg.event_id,
                "created_at": now,
            }
        ]
        rows += [
            {
                "id": new_id(),
                "session_id": session.id,
                "user_id": user_id,
                "bot": r.bot,
                "role": "bot",
                "seq": r.seq + 1,
                "text": redact(mask(r.text)),
                "event_id": None,
                "created_at": now,
            }
            for r in replies
        ]
        with self.db.write() as conn:
            if error is None:
                self.memory.apply(conn, turn.writes, now)
            _INSERT_TURN.execute_many(conn, rows)
            self.outbox.add_in(conn, replies, inbox_id=turn.inbox.id, user_id=user_id)
            self.sessions.touch(
                conn,
                session.id,
                active_bot=turn.state.active_bot,
                dialog_state=turn.state.dialog_state,
                # a failed turn is as if its message never came: a new session stays new
                user_messages=session.user_messages + (1 if error is None else 0),
            )
            ended = turn.state.end_session and self.sessions.end_in(
                conn, session.id, "explicit", now
            )
            self.inbox.finish_in(conn, turn.inbox.id, user_id=user_id, error=error)
        if ended:
            self.sessions.ended()

    def forget_sync(self, turn: Turn) -> None:
        """Delete the person and commit the confirmation, in one transaction.

        The event itself becomes a payload-free tombstone with the person's others; the
        confirmation's outbox row (it needs the chat id to be sent) goes once it is sent.
        """
        assert turn.user is not None and turn.inbox is not None
        replies = _outbound(turn)
        with self.db.write() as conn:
            forget_user_in(conn, turn.user.user_id, self.clock.now())
            self.outbox.add_in(conn, replies, inbox_id=turn.inbox.id, user_id=None)
        turn.result = TurnResult(replies, user_id=None, bot=turn.state.active_bot)

    def give_up(self, inbox_id: str, error: str) -> None:
        """Mark an event failed with nothing else committed (nothing of its turn is trusted)."""
        with self.db.write() as conn:
            self.inbox.finish_in(conn, inbox_id, user_id=None, error=error)
