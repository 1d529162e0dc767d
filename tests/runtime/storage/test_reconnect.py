"""A PostgreSQL server that drops every connection (a restart, a failover, a proxy closing
idle ones): the pool does not keep handing out dead connections.

Connections are pinged on checkout only after sitting idle a while (pinging every checkout
cost a fifth of a busy worker's time); a connection that dies in use is invalidated along
with the rest of the pool. Either way at most one statement fails, and what follows works.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import bindparam, select

from mnemobot.runtime.errors import StorageError
from mnemobot.runtime.storage import database as database_module
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import USERS
from tests.conftest import PG_ADMIN_URL

FIND_USER = Prepared(select(USERS.c.id).where(USERS.c.id == bindparam("user_id")))


@pytest.fixture
def db(postgres_database: str) -> Iterator[Database]:
    database = Database(postgres_database)
    database.start()
    try:
        yield database
    finally:
        database.stop()


def warm_pool(db: Database, connections: int = 3) -> None:
    """Check out several connections at once, then give them back: the pool keeps them."""
    held = [db.engine.connect() for _ in range(connections)]
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
        conn.rollback()
    for conn in held:
        conn.close()


def drop_every_connection(db: Database) -> None:
    name = db.engine.url.database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert killed is not None and killed[0] >= 3  # the pooled connections really went


def test_connections_idle_past_the_threshold_are_pinged_and_replaced(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    warm_pool(db)
    drop_every_connection(db)

    for _ in range(4):  # more reads than pooled connections: none of them fails
        assert db.read_one(FIND_USER, {"user_id": "nobody"}) is None


def test_a_connection_found_dead_in_use_takes_the_rest_of_the_pool_with_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # never pinged
    warm_pool(db)
    drop_every_connection(db)

    with pytest.raises(StorageError, match="database"):
        db.read_one(FIND_USER, {"user_id": "nobody"})  # a prebuilt statement meets it first
    for _ in range(4):
        assert db.read_one(FIND_USER, {"user_id": "nobody"}) is None
