"""Migration 0005 indexes what a database already holds, on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import insert

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText
from mnemobot.runtime.storage.migrate import HEAD, current_revision, upgrade
from mnemobot.runtime.storage.tables import EPISODES, SESSIONS, TURNS, USERS
from tests.conftest import PG_ADMIN_URL, _pg_url

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema at all (not the suite's migrated template)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        db.start()
        yield db
        db.stop()
        return
    name = f"mnemobot_migration_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(_pg_url(name))
    db.start()
    yield db
    db.stop()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_existing_transcript_and_episodes_are_searchable_after_the_upgrade(
    empty_database: Database,
) -> None:
    db = empty_database
    upgrade(db, "0004")
    with db.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        conn.execute(
            insert(SESSIONS).values(
                id="s1",
                conversation="console:echo:ana",
                channel="console:echo",
                chat_id="ana",
                user_id="u1",
                active_bot="echo",
                started_at=T0,
                last_activity_at=T0,
            )
        )
        conn.execute(
            insert(TURNS).values(
                id="t1",
                session_id="s1",
                user_id="u1",
                bot="echo",
                role="user",
                seq=0,
                text="Minha bicicleta é vermelha",
                created_at=T0,
            )
        )
        conn.execute(
            insert(EPISODES).values(
                id="e1",
                user_id="u1",
                conversation_id="s1",
                bot="echo",
                summary="Ana talked about her red bicycle",
                topics=["bicycles"],
                created_at=T0,
            )
        )

    upgrade(db)

    assert current_revision(db) == HEAD
    found = Recall(db, ManualClock(T0)).search("u1", "bicicleta vermelha? red bicycle")
    assert {(f.kind, f.text) for f in found} == {
        ("turn", "Minha bicicleta é vermelha"),
        ("episode", "Ana talked about her red bicycle (topics: bicycles)"),
    }
    assert all(f.at == T0 for f in found)
    FullText(db).rebuild()  # the operator's rebuild keeps the same answers
    assert len(Recall(db, ManualClock(T0)).search("u1", "bicicleta")) == 1
