"""Migrations on a database that already holds data, on SQLite and PostgreSQL: 0005 indexes
it for the words, 0009 keeps the vectors of facts and memories with their rows, 0010 writes
PostgreSQL's indexes through, 0011 numbers each session's lines, 0013 indexes words whole with
their marks, 0014 indexes Chinese and Japanese characters one by one, 0015 Thai, Lao, Khmer and Burmese
ones."""

from __future__ import annotations

import secrets
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.recall.search import Recall
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText
from mnemobot.runtime.storage.migrate import HEAD, current_revision, upgrade
from mnemobot.runtime.storage.tables import (
    EPISODES,
    FACT_HISTORY,
    SESSIONS,
    TURNS,
    USER_MEMORIES,
    USER_MEMORY,
    USERS,
)
from mnemobot.runtime.storage.vectors import VectorStore
from tests.conftest import PG_ADMIN_URL, _pg_url, skip_unless_ci

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


def test_facts_and_memories_held_before_0009_get_vectors_that_go_with_their_rows(
    empty_database: Database,
) -> None:
    db = empty_database
    upgrade(db, "0008")
    with db.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        conn.execute(
            insert(USER_MEMORY).values(
                id="f1", user_id="u1", key="pet", value="a tabby cat", memory_type="fact",
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        history = {"user_id": "u1", "key": "pet", "source": "admin", "created_at": T0}
        conn.execute(
            insert(FACT_HISTORY).values(
                id="h1", value="a parrot", action="add", superseded_at=T0, **history
            )
        )
        conn.execute(  # the live value's own row: the fact itself is embedded, not this
            insert(FACT_HISTORY).values(id="h2", value="a tabby cat", action="update", **history)
        )
        conn.execute(
            insert(USER_MEMORIES).values(
                id="m1", user_id="u1", memory="Ana is learning the cello", topics=["music"],
                source="admin", created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
    store = VectorStore()

    upgrade(db)

    assert current_revision(db) == HEAD
    with db.read() as conn:
        pending = store.unembedded(conn, "m", limit=10)
    assert [(p.kind, p.id, p.text) for p in pending] == [
        ("fact", "f1", "pet: a tabby cat"),
        ("memory", "m1", "Ana is learning the cello"),
        ("earlier_fact", "h1", "pet: a parrot"),
    ]
    with db.write() as conn:
        store.put(conn, "m", [(p, array("f", [1.0, 0.0])) for p in pending], T0)
        assert store.count(conn, "u1") == 3
        conn.execute(update(USER_MEMORY).values(ttl=T0))  # not the text: the vector stays
        conn.execute(update(USER_MEMORIES).values(topics=["cello"]))
        conn.execute(update(FACT_HISTORY).values(superseded_at=T0))
        assert store.count(conn, "u1") == 3
        conn.execute(update(USER_MEMORY).values(value="a green parrot"))
        conn.execute(update(USER_MEMORIES).values(memory="Ana is learning the piano"))
        assert [p.id for p in store.unembedded(conn, "m", limit=10)] == ["f1", "m1", "h2"]
        conn.execute(delete(FACT_HISTORY).where(FACT_HISTORY.c.id == "h1"))
        assert store.count(conn, "u1") == 0
        again = store.unembedded(conn, "m", user_id="u1", limit=10)
        store.put(conn, "m", [(p, array("f", [1.0, 0.0])) for p in again], T0)
        assert store.count(conn, "u1") == 3
        conn.execute(delete(USER_MEMORY))
        conn.execute(delete(USER_MEMORIES))
        conn.execute(delete(FACT_HISTORY))
        assert store.count(conn, "u1") == 0


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_0010_writes_postgresqls_recall_indexes_through_and_merges_what_was_pending(
    empty_database: Database,
) -> None:
    """A GIN index's pending list is read whole by every search until a VACUUM merges it:
    100,000 lines written made finding one rare word read 516 index pages instead of 4."""
    db = empty_database
    with db.write() as conn:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        except DBAPIError as exc:  # it reads the pending list; contrib, created by a superuser
            skip_unless_ci(f"pgstattuple cannot be created here: {exc.orig}")
    upgrade(db, "0009")
    with db.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        conn.execute(insert(SESSIONS).values(**_session("s1")))
        conn.execute(
            insert(TURNS),
            [_turn(f"t{n}", f"line {n} about okapis and tea") for n in range(200)],
        )

    def pending_and_options() -> dict[str, tuple[int, list[str] | None]]:
        """Each recall index's pages waiting in its pending list, and its options."""
        with db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT c.relname, c.reloptions FROM pg_class c "
                "WHERE c.relname LIKE 'ix_%%_search' ORDER BY c.relname"
            ).all()
            return {name: (_pending_pages(conn, name), options) for name, options in rows}

    before = pending_and_options()
    assert before["ix_turns_search"][0] > 0  # the new lines wait in the pending list

    upgrade(db)

    assert current_revision(db) == HEAD
    after = pending_and_options()
    assert set(after) == {
        "ix_turns_search",
        "ix_episodes_search",
        "ix_user_memory_search",
        "ix_fact_history_search",
        "ix_user_memories_search",
    }
    assert all(pages == 0 and options == ["fastupdate=off"] for pages, options in after.values())
    with db.write() as conn:  # a line written now goes straight into the index
        conn.execute(insert(TURNS).values(**_turn("t-new", "an okapi at last")))
    assert pending_and_options()["ix_turns_search"][0] == 0
    assert len(Recall(db, ManualClock(T0)).search("u1", "okapi", limit=300)) == 201


def test_0011_numbers_each_sessions_lines_in_the_order_they_were_said(
    empty_database: Database,
) -> None:
    db = empty_database
    upgrade(db, "0010")
    said = [  # (id, session, seconds after T0, seq): written out of order
        ("c", "s1", 1, 0),
        ("y", "s2", 5, 0),
        ("b", "s1", 0, 1),
        ("a", "s1", 0, 0),
    ]
    with db.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        conn.execute(insert(SESSIONS), [_session("s1"), _session("s2")])
        conn.execute(
            insert(TURNS),
            [
                {
                    **_turn(f"t-{name}", f"line {name} about okapis"),
                    "session_id": session,
                    "created_at": T0 + timedelta(seconds=seconds),
                    "seq": seq,
                }
                for name, session, seconds, seq in said
            ],
        )

    upgrade(db)

    with db.read() as conn:
        lines = {row.id: row.line for row in conn.execute(select(TURNS.c.id, TURNS.c.line))}
    assert lines == {"t-a": 0, "t-b": 1, "t-c": 2, "t-y": 0}
    recall = Recall(db, ManualClock(T0))
    assert len(recall.search("u1", "okapis")) == 4  # the full-text index is whole
    with db.write() as conn:  # and still follows a line's text
        conn.execute(update(TURNS).where(TURNS.c.id == "t-a").values(text="a tapir now"))
    assert [f.id for f in recall.search("u1", "tapir")] == ["t-a"]
    assert len(recall.search("u1", "okapis")) == 3


def test_0013_indexes_held_lines_again_with_the_marks_inside_their_words(
    empty_database: Database,
) -> None:
    db = empty_database
    _said_at(db, "0012", ("t-hi", "मुझे हिन्दी फ़िल्में पसंद हैं"), ("t-en", "a line about okapis"))

    upgrade(db)

    recall = Recall(db, ManualClock(T0))
    assert [f.id for f in recall.search("u1", "हिन्दी फ़िल्म")] == ["t-hi"]
    assert [f.id for f in recall.search("u1", "okapis")] == ["t-en"]
    with db.write() as conn:  # the triggers keep the index made again
        conn.execute(update(TURNS).where(TURNS.c.id == "t-en").values(text="तमिल फ़िल्में"))
        conn.execute(delete(TURNS).where(TURNS.c.id == "t-hi"))
    assert [f.id for f in recall.search("u1", "हिन्दी फ़िल्म")] == ["t-en"]
    assert recall.search("u1", "okapis") == []


def test_0014_indexes_held_chinese_and_japanese_again_character_by_character(
    empty_database: Database,
) -> None:
    db = empty_database
    _said_at(db, "0013", ("t-zh", "我昨天在北京吃了饺子"), ("t-en", "a line about okapis"))
    with db.write() as conn:
        conn.execute(
            insert(EPISODES).values(
                id="e1", user_id="u1", conversation_id="s1", bot="echo",
                summary="昨日は東京で寿司を食べました", topics=["旅行"], created_at=T0,
            )
        )  # fmt: skip

    upgrade(db)

    recall = Recall(db, ManualClock(T0))
    assert [f.id for f in recall.search("u1", "饺子") if f.kind == "turn"] == ["t-zh"]
    assert [f.id for f in recall.search("u1", "寿司") if f.kind == "episode"] == ["e1"]
    assert [f.id for f in recall.search("u1", "okapis")] == ["t-en"]
    with db.write() as conn:  # the triggers keep the index made again, spaced as it
        conn.execute(update(TURNS).where(TURNS.c.id == "t-en").values(text="北京烤鸭很好吃"))
        conn.execute(delete(TURNS).where(TURNS.c.id == "t-zh"))
    assert [f.id for f in recall.search("u1", "北京") if f.kind == "turn"] == ["t-en"]
    assert recall.search("u1", "饺子") == []
    FullText(db).rebuild()  # `mnemobot db reindex` indexes them as the triggers do
    assert [f.id for f in recall.search("u1", "烤鸭") if f.kind == "turn"] == ["t-en"]


def test_0015_indexes_held_thai_again_character_by_character(empty_database: Database) -> None:
    db = empty_database
    _said_at(db, "0014", ("t-th", "ฉันชอบกินข้าวผัดมาก"), ("t-zh", "我昨天在北京吃了饺子"))

    upgrade(db)

    recall = Recall(db, ManualClock(T0))
    assert [f.id for f in recall.search("u1", "ข้าวผัด")] == ["t-th"]
    assert [f.id for f in recall.search("u1", "饺子")] == ["t-zh"]  # as 0014 had it
    with db.write() as conn:  # the triggers keep the index made again, spaced as it
        conn.execute(update(TURNS).where(TURNS.c.id == "t-zh").values(text="ต้มยำกุ้งอร่อย"))
        conn.execute(delete(TURNS).where(TURNS.c.id == "t-th"))
    assert [f.id for f in recall.search("u1", "ต้มยำ")] == ["t-zh"]
    assert recall.search("u1", "ข้าวผัด") == []
    FullText(db).rebuild()
    assert [f.id for f in recall.search("u1", "กุ้ง")] == ["t-zh"]


def _said_at(db: Database, revision: str, *said: tuple[str, str]) -> None:
    """A database at ``revision`` holding ``said`` (line id, text), in order, in one session
    of one person's (u1, s1)."""
    upgrade(db, revision)
    with db.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        conn.execute(insert(SESSIONS), [_session("s1")])
        lines = [{**_turn(line_id, text), "seq": seq} for seq, (line_id, text) in enumerate(said)]
        conn.execute(insert(TURNS), lines)


def _session(session_id: str) -> dict[str, object]:
    return {
        "id": session_id,
        "conversation": f"console:echo:{session_id}",
        "channel": "console:echo",
        "chat_id": "ana",
        "user_id": "u1",
        "active_bot": "echo",
        "started_at": T0,
        "last_activity_at": T0,
    }


def _turn(turn_id: str, said: str) -> dict[str, object]:
    return {
        "id": turn_id,
        "session_id": "s1",
        "user_id": "u1",
        "bot": "echo",
        "role": "user",
        "seq": 0,
        "text": said,
        "created_at": T0,
    }


def _pending_pages(conn: Connection, index: str) -> int:
    """Pages a GIN index holds in its pending list (pgstattuple)."""
    return int(
        conn.exec_driver_sql(
            "SELECT pending_pages FROM pgstatginindex(%(index)s::regclass)", {"index": index}
        ).scalar_one()
    )
