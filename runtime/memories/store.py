"""The SQL of free-text memories: read, add, edit and delete a person's, within their limit.

Two ways in, as for key/value memory: the ``*_in`` methods work inside a caller's
transaction (a turn's commit, the admin's write with its audit record, the model's edits
after a session), and the plain methods are each a short transaction of their own (the CLI).
Every statement names the person: an id belonging to someone else is an unknown id.

A write locks the person's ``users`` row first (PostgreSQL; SQLite has one writer at a time),
so two writers cannot both pass the limit, and a person forgotten meanwhile is a clear
UnknownUser rather than a foreign-key failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import MemoryFull, UnknownMemory
from mnemobot.runtime.memories.record import Memory, Origin
from mnemobot.runtime.people.hold import hold_person_in
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import USER_MEMORIES, new_id

__all__ = ["Change", "MemoriesStore", "delete_stale_in", "missing_message"]

_n = USER_MEMORIES.c


@dataclass(frozen=True, slots=True)
class Change:
    """An edit of one memory: the new text, and the other fields only where given."""

    text: str
    topics: tuple[str, ...] | None = None  # None: keep
    input: str | None = None  # None: keep
    feedback: str | None = None  # None: keep


def _memory(row: Any) -> Memory:
    return Memory(
        id=row.id,
        text=row.memory,
        topics=tuple(row.topics or ()),
        input=row.input,
        feedback=row.feedback,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source=row.source,
        bot=row.bot,
        session_id=row.session_id,
    )


def missing_message(user_id: str, ids: Sequence[str]) -> str:
    """What UnknownMemory says: whose, which ids, and that nothing changed."""
    shown = ", ".join(repr(i) for i in list(ids)[:5]) + (" ..." if len(ids) > 5 else "")
    plural = "memories" if len(ids) > 1 else "memory"
    return (
        f"user {user_id} has no {plural} {shown}; nothing was changed (list them to see their ids)"
    )


class MemoriesStore:
    """A person's free-text memories on one database.

    Args:
        db: the database.
        clock: the time of each write.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # -- inside a caller's transaction ------------------------------------------------------

    @staticmethod
    def list_in(conn: Connection, user_id: str, newest: int | None = None) -> list[Memory]:
        """The person's memories, oldest first (only the ``newest`` most recently changed)."""
        query = select(USER_MEMORIES).where(_n.user_id == user_id)
        if newest is not None:
            query = query.order_by(_n.updated_at.desc(), _n.id).limit(newest)
        rows = conn.execute(query).all()
        return sorted((_memory(r) for r in rows), key=lambda m: (m.created_at, m.id))

    @staticmethod
    def get_in(conn: Connection, user_id: str, memory_id: str) -> Memory | None:
        row = conn.execute(
            select(USER_MEMORIES).where(_n.user_id == user_id, _n.id == memory_id)
        ).first()
        return _memory(row) if row is not None else None

    @staticmethod
    def count_in(conn: Connection, user_id: str) -> int:
        query = select(func.count()).select_from(USER_MEMORIES).where(_n.user_id == user_id)
        return int(conn.execute(query).scalar_one())

    @staticmethod
    def existing_in(conn: Connection, user_id: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are this person's memories."""
        if not ids:
            return set()
        query = select(_n.id).where(_n.user_id == user_id, _n.id.in_(list(ids)))
        return set(conn.execute(query).scalars())

    def insert_in(
        self,
        conn: Connection,
        user_id: str,
        text: str,
        topics: Sequence[str],
        *,
        origin: Origin,
        now: datetime,
        input: str | None = None,
        feedback: str | None = None,
        memory_id: str | None = None,
    ) -> Memory:
        """Add a memory (values already checked by :mod:`memories.record`)."""
        memory = Memory(
            id=memory_id or new_id(),
            text=text,
            topics=tuple(topics),
            input=input,
            feedback=feedback,
            created_at=now,
            updated_at=now,
            source=origin.source,
            bot=origin.bot,
            session_id=origin.session_id,
        )
        conn.execute(
            insert(USER_MEMORIES).values(
                id=memory.id,
                user_id=user_id,
                memory=text,
                topics=list(topics),
                input=input,
                feedback=feedback,
                source=origin.source,
                bot=origin.bot,
                session_id=origin.session_id,
                created_at=now,
                updated_at=now,
            )
        )
        return memory

    def update_in(
        self,
        conn: Connection,
        user_id: str,
        memory_id: str,
        change: Change,
        *,
        origin: Origin,
        now: datetime,
    ) -> Memory:
        """Edit a memory in place; UnknownMemory (nothing changed) when it is not theirs."""
        values: dict[str, Any] = {
            "memory": change.text,
            "source": origin.source,
            "bot": origin.bot,
            "session_id": origin.session_id,
            "updated_at": now,
        }
        if change.topics is not None:
            values["topics"] = list(change.topics)
        if change.input is not None:
            values["input"] = change.input
        if change.feedback is not None:
            values["feedback"] = change.feedback
        done = conn.execute(
            update(USER_MEMORIES).where(_n.user_id == user_id, _n.id == memory_id).values(**values)
        ).rowcount
        if done != 1:
            raise UnknownMemory(missing_message(user_id, [memory_id]))
        found = self.get_in(conn, user_id, memory_id)
        assert found is not None
        return found

    def delete_in(self, conn: Connection, user_id: str, ids: Sequence[str]) -> int:
        """Delete ``ids``, all or none: UnknownMemory naming those that are not theirs."""
        missing = [i for i in ids if i not in self.existing_in(conn, user_id, ids)]
        if missing:
            raise UnknownMemory(missing_message(user_id, missing))
        if not ids:
            return 0
        query = delete(USER_MEMORIES).where(_n.user_id == user_id, _n.id.in_(list(ids)))
        return int(conn.execute(query).rowcount)

    def add_in(
        self,
        conn: Connection,
        user_id: str,
        text: str,
        topics: Sequence[str],
        *,
        origin: Origin,
        limit: int,
        input: str | None = None,
        feedback: str | None = None,
    ) -> Memory:
        """One memory added on ``conn``: the person held, the row written, the limit checked
        (MemoryFull rolls the caller's transaction back)."""
        hold_person_in(conn, user_id)
        memory = self.insert_in(
            conn,
            user_id,
            text,
            topics,
            origin=origin,
            now=self.clock.now(),
            input=input,
            feedback=feedback,
        )
        self.check_room_in(conn, user_id, limit)
        return memory

    def check_room_in(self, conn: Connection, user_id: str, limit: int) -> None:
        """MemoryFull (the caller rolls back) when the person holds more than ``limit``."""
        if self.count_in(conn, user_id) > limit:
            raise MemoryFull(limit, "memories")

    # -- each a transaction of its own --------------------------------------------------------

    def list(self, user_id: str, newest: int | None = None) -> list[Memory]:
        with self.db.read() as conn:
            return self.list_in(conn, user_id, newest)

    def get(self, user_id: str, memory_id: str) -> Memory | None:
        with self.db.read() as conn:
            return self.get_in(conn, user_id, memory_id)

    def count(self, user_id: str) -> int:
        with self.db.read() as conn:
            return self.count_in(conn, user_id)

    def add(
        self,
        user_id: str,
        text: str,
        topics: Sequence[str],
        *,
        origin: Origin,
        limit: int,
        input: str | None = None,
        feedback: str | None = None,
    ) -> Memory:
        with self.db.write() as conn:
            return self.add_in(
                conn,
                user_id,
                text,
                topics,
                origin=origin,
                limit=limit,
                input=input,
                feedback=feedback,
            )

    def edit(self, user_id: str, memory_id: str, change: Change, *, origin: Origin) -> Memory:
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            return self.update_in(
                conn, user_id, memory_id, change, origin=origin, now=self.clock.now()
            )

    def delete(self, user_id: str, ids: Sequence[str]) -> int:
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            return self.delete_in(conn, user_id, ids)


def delete_stale_in(conn: Connection, changed_before: datetime, limit: int) -> int:
    """Retention: delete up to ``limit`` memories nobody changed since ``changed_before``
    (the janitor's ``[janitor] user_memories`` age); the recall index goes with them."""
    ids = (
        conn.execute(select(_n.id).where(_n.updated_at <= changed_before).limit(limit))
        .scalars()
        .all()
    )
    if not ids:
        return 0
    return int(conn.execute(delete(USER_MEMORIES).where(_n.id.in_(ids))).rowcount)
