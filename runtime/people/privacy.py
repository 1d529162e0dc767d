"""Forget and export: everything held about one person, and nothing of anyone else.

Both walk ``PERSONAL_TABLES`` so a table added to the schema is covered as soon as it is
listed there (a test fails if a table with a ``user_id`` column is missing from the list).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, or_, select

from mnemobot.runtime.conversations.inbox import tombstone_in
from mnemobot.runtime.errors import UnknownUser
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import purge_deleted_in
from mnemobot.runtime.storage.tables import (
    IDENTITIES,
    MERGES,
    OUTBOX,
    PERSONAL_TABLES,
    USERS,
    User,
)

__all__ = ["export_user", "forget_user", "forget_user_in"]

# Children before parents, so foreign keys hold at every step.
_DELETE_ORDER = [
    "recall_vectors",
    "session_memory",
    "turns",
    "jobs",
    "inbox",
    "outbox",
    "link_codes",
    "link_attempts",
    "fact_history",
    "llm_usage",
    "episodes",
    "user_memory",
    "user_memories",
    "sessions",
    "identities",
    "users",
]
assert sorted(_DELETE_ORDER) == sorted(PERSONAL_TABLES), "update _DELETE_ORDER with the schema"

_merges = MERGES.c


def _exists(conn: Any, user_id: str) -> bool:
    users = USERS.c
    return conn.execute(select(users.id).where(users.id == user_id)).first() is not None


def forget_user(db: Database, user_id: str, now: datetime | None = None) -> dict[str, int]:
    """Delete every row of ``user_id`` in one transaction; returns rows removed per table."""
    with db.write() as conn:
        return forget_user_in(conn, user_id, now or datetime.now(UTC))


def forget_user_in(conn: Connection, user_id: str, now: datetime) -> dict[str, int]:
    """:func:`forget_user` inside the caller's transaction (an in-chat ``/forget yes``).

    Their inbox rows, the unanswered ones included (found by account when no turn has
    claimed them yet), become payload-free tombstones that still stop a redelivery
    (``inbox.tombstone_in``); the replies of those events go, sent or not. The count given
    for ``inbox`` is of the tombstones.
    """
    removed: dict[str, int] = {}
    meta = User.metadata
    if not _exists(conn, user_id):
        raise UnknownUser(f"no user {user_id!r}")
    ids = IDENTITIES.c
    accounts = {
        (str(kind), str(external))
        for kind, external in conn.execute(
            select(ids.channel_kind, ids.external_id).where(ids.user_id == user_id)
        )
    }
    events = tombstone_in(conn, user_id, accounts, now)
    removed["inbox"] = len(events)
    out = OUTBOX.c
    removed["outbox"] = conn.execute(
        delete(OUTBOX).where(or_(out.user_id == user_id, out.inbox_id.in_(events)))
    ).rowcount
    for name in _DELETE_ORDER:
        if name in removed:
            continue
        table = meta.tables[name]
        column = table.c[PERSONAL_TABLES[name]]
        removed[name] = conn.execute(delete(table).where(column == user_id)).rowcount
    removed["merges"] = conn.execute(
        delete(MERGES).where(or_(_merges.from_user_id == user_id, _merges.into_user_id == user_id))
    ).rowcount
    purge_deleted_in(conn)
    return removed


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):  # recall_vectors.vector: float32 bytes
        return base64.b64encode(value).decode("ascii")
    return value.isoformat() if isinstance(value, datetime) else value


def export_user(db: Database, user_id: str) -> dict[str, Any]:
    """One JSON-ready document of everything held about ``user_id``."""
    meta = User.metadata
    document: dict[str, Any] = {"user_id": user_id}
    with db.read() as conn:
        if not _exists(conn, user_id):
            raise UnknownUser(f"no user {user_id!r}")
        for name in sorted(PERSONAL_TABLES):
            table = meta.tables[name]
            column = table.c[PERSONAL_TABLES[name]]
            # Rows of one moment share created_at (a turn's line and its replies): seq, then id,
            # keep their order stable across databases.
            order = (
                [table.c[c] for c in ("created_at", "seq", "id") if c in table.c]
                if "created_at" in table.c
                else [column]
            )
            rows = conn.execute(select(table).where(column == user_id).order_by(*order)).mappings()
            document[name] = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
        merges = conn.execute(
            select(MERGES).where(
                or_(_merges.from_user_id == user_id, _merges.into_user_id == user_id)
            )
        ).mappings()
        document["merges"] = [{k: _jsonable(v) for k, v in row.items()} for row in merges]
    return document
