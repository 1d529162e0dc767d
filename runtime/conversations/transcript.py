"""What a chat page shows when it opens: the open session of a conversation, with its turns.

A page reloaded, or a bot picked again, shows the conversation where it was; a session that
ended (``/end``, or idle past ``[sessions] timeout``) shows nothing, as the next message
opens a new one. Read-only: an idle session is only ended by the next turn or the janitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import SESSIONS, TURNS

__all__ = ["OpenSession", "TranscriptLine", "open_session"]

_s = SESSIONS.c
_t = TURNS.c


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of the turn log: ``role`` is ``user`` or ``bot``; ``bot`` the bot spoken to
    or answering."""

    role: str
    bot: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A conversation's open session: who answers now, and its latest turns, oldest first."""

    id: str
    active_bot: str
    turns: list[TranscriptLine] = field(default_factory=list)


def open_session(
    db: Database, clock: Clock, timeout: int, conversation: str, limit: int = 200
) -> OpenSession | None:
    """The open, unexpired session of ``conversation`` with its last ``limit`` turns; or None."""
    with db.read() as conn:
        row = conn.execute(
            select(_s.id, _s.active_bot, _s.last_activity_at).where(
                _s.conversation == conversation, _s.ended_at.is_(None)
            )
        ).first()
        if row is None or row.last_activity_at + timedelta(seconds=timeout) <= clock.now():
            return None
        rows = conn.execute(
            select(_t.role, _t.bot, _t.text, _t.created_at)
            .where(_t.session_id == row.id)
            .order_by(_t.created_at.desc(), _t.seq.desc())
            .limit(max(0, limit))
        ).all()
    lines = [TranscriptLine(r.role, r.bot, r.text, r.created_at) for r in reversed(rows)]
    return OpenSession(row.id, row.active_bot, lines)
