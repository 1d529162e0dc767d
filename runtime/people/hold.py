"""Holding a person for the length of a write transaction."""

from __future__ import annotations

from sqlalchemy import Connection, select

from mnemobot.runtime.errors import UnknownUser
from mnemobot.runtime.storage.dialect import dialect_of
from mnemobot.runtime.storage.tables import USERS

__all__ = ["hold_person_in"]


def hold_person_in(conn: Connection, user_id: str) -> None:
    """Fail with UnknownUser if the person is gone; on PostgreSQL hold their row till commit.

    Writes that check a per-person limit (memories, an operator's edits) then queue behind
    each other and behind forget, instead of both counting room that only one of them has,
    or writing for a person being removed.
    """
    query = dialect_of(conn).lock_rows(select(USERS.c.id).where(USERS.c.id == user_id))
    if conn.execute(query).first() is None:
        raise UnknownUser(f"no user {user_id!r} (forgotten meanwhile?)")
