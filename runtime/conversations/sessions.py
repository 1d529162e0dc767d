"""Sessions: a stretch of one conversation, ended by inactivity or on request.

A session opens with the first message of a conversation and ends after ``sessions.timeout``
seconds without one, or explicitly (``/end``, ``ctx.end_session()``). Ending clears the
session scope and context and records a ``session_ended`` job in the same transaction, so
the episode worker learns of every ending even if the process dies right after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.episodes.bell import JobBell
from mnemobot.runtime.episodes.jobs import EPISODE_JOB, SUMMARY_REQUESTED
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import (
    JOBS,
    SESSION_MEMORY,
    SESSIONS,
    new_id,
)

__all__ = ["SessionInfo", "SessionStore"]

_s = SESSIONS.c
_sm = SESSION_MEMORY.c


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """The open session of a conversation, as a turn starts.

    ``opened_now`` is true until a turn of the session has been answered: a session whose
    opening message failed is still new, so the next message starts it again (``start.bas``
    runs), as if the failed message never came.
    """

    id: str
    conversation: str
    user_id: str
    active_bot: str
    dialog_state: Any
    user_messages: int
    started_at: datetime
    last_activity_at: datetime
    opened_now: bool


class SessionStore:
    """Opens, resumes, touches and ends sessions."""

    def __init__(
        self, db: Database, clock: Clock, *, timeout: int = 1800, bell: JobBell | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.timeout = timeout
        self.bell = bell  # rung after a commit that ended sessions (their jobs are due)
        self._open = Prepared(
            select(
                _s.id,
                _s.user_id,
                _s.active_bot,
                _s.dialog_state,
                _s.user_messages,
                _s.started_at,
                _s.last_activity_at,
            ).where(_s.conversation == bindparam("conversation"), _s.ended_at.is_(None))
        )
        self._touch = Prepared(
            update(SESSIONS)
            .where(_s.id == bindparam("session_id"))
            .values(
                active_bot=bindparam("active_bot"),
                dialog_state=bindparam("dialog_state", type_=_s.dialog_state.type),
                user_messages=bindparam("user_messages"),
                last_activity_at=bindparam("now", type_=_s.last_activity_at.type),
            )
        )

    def begin(
        self, *, conversation: str, channel: str, chat_id: str, user_id: str, entry_bot: str
    ) -> SessionInfo:
        """The conversation's open session, ending an idle one and opening a new one if needed.

        Called with the conversation held, so a session that is open, fresh and its person's
        is returned from one read, without a write transaction.
        """
        now = self.clock.now()
        params = {"conversation": conversation}
        row = self.db.read_one(self._open, params)
        if row is not None and self._current(row, user_id, now):
            return _info(row, conversation)
        with self.db.write() as conn:
            row = self._open.first(conn, params)
            if row is not None and self._fresh(row, now):
                if row[1] != user_id:  # the account was linked into another user
                    conn.execute(update(SESSIONS).where(_s.id == row[0]).values(user_id=user_id))
                return _info(row, conversation, user_id=user_id)
            ended = row is not None and self.end_in(conn, row[0], "timeout", now)
            session_id = new_id()
            conn.execute(
                insert(SESSIONS).values(
                    id=session_id,
                    conversation=conversation,
                    channel=channel,
                    chat_id=chat_id,
                    user_id=user_id,
                    active_bot=entry_bot,
                    dialog_state=None,
                    user_messages=0,
                    started_at=now,
                    last_activity_at=now,
                )
            )
        if ended:
            self.ended()
        return SessionInfo(
            session_id, conversation, user_id, entry_bot, None, 0, now, now, opened_now=True
        )

    def ended(self) -> None:
        """Say that a transaction that ended sessions has committed: their summaries are due."""
        if self.bell is not None:
            self.bell.ring()

    def _fresh(self, row: tuple[Any, ...], now: datetime) -> bool:
        last_activity: datetime = row[6]
        return last_activity + timedelta(seconds=self.timeout) > now

    def _current(self, row: tuple[Any, ...], user_id: str, now: datetime) -> bool:
        return row[1] == user_id and self._fresh(row, now)

    def touch(
        self,
        conn: Connection,
        session_id: str,
        *,
        active_bot: str,
        dialog_state: Any,
        user_messages: int,
    ) -> None:
        """Record a finished turn (inside the turn's transaction).

        ``user_messages`` counts answered turns only: a failed turn leaves it as it was.
        """
        self._touch.execute(
            conn,
            {
                "session_id": session_id,
                "active_bot": active_bot,
                "dialog_state": dialog_state,
                "user_messages": user_messages,
                "now": self.clock.now(),
            },
        )

    def end_in(self, conn: Connection, session_id: str, reason: str, now: datetime) -> bool:
        """End a session inside the caller's transaction; False if it had already ended."""
        row = conn.execute(
            select(SESSIONS).where(_s.id == session_id, _s.ended_at.is_(None))
        ).first()
        if row is None:
            return False
        ended = conn.execute(
            update(SESSIONS)
            .where(_s.id == session_id, _s.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason, dialog_state=None)
        ).rowcount
        if not ended:
            return False
        requested = conn.execute(
            select(_sm.value).where(
                _sm.session_id == session_id, _sm.kind == "runtime", _sm.key == SUMMARY_REQUESTED
            )
        ).scalar()
        conn.execute(delete(SESSION_MEMORY).where(_sm.session_id == session_id))
        conn.execute(
            insert(JOBS).values(
                id=new_id(),
                kind=EPISODE_JOB,
                user_id=row.user_id,
                payload={
                    "session_id": session_id,
                    "bot": row.active_bot,
                    "channel": row.channel,
                    "user_messages": row.user_messages,
                    "reason": reason,
                    **({"requested": True} if requested is True else {}),
                },
                status="pending",
                attempts=0,
                run_after=now,
                created_at=now,
            )
        )
        return True

    def end(self, session_id: str, reason: str = "explicit") -> bool:
        with self.db.write() as conn:
            ended = self.end_in(conn, session_id, reason, self.clock.now())
        if ended:
            self.ended()
        return ended

    def expire_idle(self, batch: int = 500) -> int:
        """End up to ``batch`` sessions idle past the timeout (the janitor calls this)."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.timeout)
        with self.db.write() as conn:
            ids = (
                conn.execute(
                    select(_s.id)
                    .where(_s.ended_at.is_(None), _s.last_activity_at <= cutoff)
                    .order_by(_s.last_activity_at)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            ended = sum(self.end_in(conn, session_id, "timeout", now) for session_id in ids)
        if ended:
            self.ended()
        return ended


def _info(row: tuple[Any, ...], conversation: str, *, user_id: str | None = None) -> SessionInfo:
    """A SessionInfo from a row of ``SessionStore._open`` (new while no turn was answered)."""
    session_id, owner, active_bot, dialog_state, user_messages, started_at, last_activity = row
    return SessionInfo(
        id=session_id,
        conversation=conversation,
        user_id=user_id or owner,
        active_bot=active_bot,
        dialog_state=dialog_state,
        user_messages=user_messages,
        started_at=started_at,
        last_activity_at=last_activity,
        opened_now=user_messages == 0,
    )
