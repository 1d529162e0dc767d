"""Prebuilt statements run as SQLAlchemy would run them, whatever the batch size.

``execute_many`` runs a row or two as single executes (psycopg's ``executemany`` sets up a
pipeline, dearer for so few) and more rows as one ``executemany``: both paths must store
every row, with its bind processing, and fail whole on a bad row inside a transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select

from mnemobot.runtime.errors import StorageError
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import FEW_ROWS, Prepared
from mnemobot.runtime.storage.tables import USERS

ADD_USER = Prepared(
    insert(USERS).values(
        id=bindparam("id"),
        display_name=bindparam("name"),
        created_at=bindparam("now", type_=USERS.c.created_at.type),
    )
)


def stored(database: Database, prefix: str) -> list[tuple[str, str]]:
    with database.read() as conn:
        rows = conn.execute(
            select(USERS.c.id, USERS.c.display_name)
            .where(USERS.c.id.like(f"{prefix}%"))
            .order_by(USERS.c.id)
        )
        return [(r.id, r.display_name) for r in rows]


@pytest.mark.parametrize("count", [0, 1, FEW_ROWS, FEW_ROWS + 1, 7])
def test_every_row_of_a_batch_is_stored(database: Database, count: int) -> None:
    now = datetime.now(UTC)
    rows = [{"id": f"batch{count}-{i}", "name": f"Person {i}", "now": now} for i in range(count)]

    with database.write() as conn:
        ADD_USER.execute_many(conn, rows)

    assert stored(database, f"batch{count}-") == [(r["id"], r["name"]) for r in rows]


@pytest.mark.parametrize("count", [FEW_ROWS, FEW_ROWS + 3])
def test_a_bad_row_fails_the_whole_transaction(database: Database, count: int) -> None:
    now = datetime.now(UTC)
    rows = [{"id": f"bad{count}-{i}", "name": "P", "now": now} for i in range(count - 1)]
    rows.append(dict(rows[0]))  # the same id again: the primary key refuses it

    with pytest.raises(StorageError, match=r"(?i)unique|duplicate"), database.write() as conn:
        ADD_USER.execute_many(conn, rows)

    assert stored(database, f"bad{count}-") == []
