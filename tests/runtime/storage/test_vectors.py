"""VectorStore on both databases: what lacks a vector (an open session's turns only for that
session), and no vector for a row that changed while it was being embedded (the model call
takes a while; the row's trigger fired before)."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, update

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import (
    SESSIONS,
    TURNS,
    USER_MEMORIES,
    USER_MEMORY,
    USERS,
)
from mnemobot.runtime.storage.vectors import VectorStore

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
VECTOR = array("f", [0.6, 0.8])


def _person(database: Database) -> None:
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="u1", display_name="Ana", created_at=T0))
        for session, ended, line in (("s1", T0, "my cat is called Miso"), ("s2", None, "hi")):
            conn.execute(
                insert(SESSIONS).values(
                    id=session, conversation="console:keeper:ana", channel="console:keeper",
                    chat_id="ana", user_id="u1", active_bot="keeper", started_at=T0,
                    last_activity_at=T0, ended_at=ended,
                )
            )  # fmt: skip
            conn.execute(
                insert(TURNS).values(
                    id=session.replace("s", "t"), session_id=session, user_id="u1", bot="keeper",
                    role="user", seq=0, text=line, created_at=T0,
                )
            )  # fmt: skip
        conn.execute(
            insert(USER_MEMORY).values(
                id="f1", user_id="u1", key="favourite_food", value={"dish": "sushi"},
                memory_type="fact", created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        conn.execute(
            insert(USER_MEMORIES).values(
                id="m1", user_id="u1", memory="Ana is learning the cello", source="bot",
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip


def test_facts_and_memories_come_first_and_a_session_or_a_person_can_be_asked_for(
    database: Database,
) -> None:
    _person(database)
    store = VectorStore()
    with database.read() as conn:
        everything = store.unembedded(conn, "m", limit=10)
        session = store.unembedded(conn, "m", session_id="s1", limit=10)
        person = store.unembedded(conn, "m", user_id="u1", limit=10)
        nobody = store.unembedded(conn, "m", user_id="u2", limit=10)
        first = store.unembedded(conn, "m", limit=1)
        still_open = store.unembedded(conn, "m", session_id="s2", limit=10)

    assert [(i.kind, i.id, i.text) for i in everything] == [
        ("fact", "f1", 'favourite food: {"dish": "sushi"}'),
        ("memory", "m1", "Ana is learning the cello"),
        ("turn", "t1", "my cat is called Miso"),
    ]
    assert everything[0].key == "favourite_food" and everything[0].value == {"dish": "sushi"}
    # t2's session is still open: its own job embeds it, with the line said after it
    assert [i.id for i in session] == ["t1"]
    assert [i.id for i in still_open] == ["t2"]
    assert [i.id for i in person] == ["f1", "m1"]
    assert nobody == []
    assert [i.id for i in first] == ["f1"]


def test_no_vector_is_stored_for_a_row_that_went_or_changed_while_it_was_embedded(
    database: Database,
) -> None:
    _person(database)
    store = VectorStore()
    with database.read() as conn:
        pending = store.unembedded(conn, "m", limit=10)

    with database.write() as conn:  # a turn changes the fact, a bot deletes the memory
        conn.execute(update(USER_MEMORY).values(value={"dish": "ramen"}))
        conn.execute(delete(USER_MEMORIES))
    with database.write() as conn:
        stored = store.put(conn, "m", [(item, VECTOR) for item in pending], T0)

    assert stored == 1  # the turn's alone
    with database.read() as conn:
        assert store.count(conn, "u1") == 1
        [again] = store.unembedded(conn, "m", limit=10)
    assert (again.id, again.text) == ("f1", 'favourite food: {"dish": "ramen"}')
    with database.write() as conn:
        assert store.put(conn, "m", [(again, VECTOR)], T0) == 1
        assert store.put(conn, "m", [(again, VECTOR)], T0) == 0  # already there
        assert store.unembedded(conn, "m", limit=10) == []


@pytest.mark.timeout(20)  # waiting for the lock would hang until the other transaction ends
def test_a_row_another_transaction_is_changing_is_skipped_not_waited_for(
    database: Database,
) -> None:
    """PostgreSQL: the store holds the rows it embeds till commit (``FOR SHARE``), and skips a
    row another transaction is changing (``SKIP LOCKED``), which a later pass embeds."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite's writes are serial: no other transaction holds a row meanwhile")
    _person(database)
    store = VectorStore()
    with database.read() as conn:
        pending = store.unembedded(conn, "m", limit=10)
    assert [item.id for item in pending] == ["f1", "m1", "t1"]

    with database.engine.connect() as turn:  # a turn changing the fact, not yet committed
        changing = turn.begin()
        turn.execute(update(USER_MEMORY).values(value={"dish": "ramen"}))
        with database.write() as conn:
            stored = store.put(conn, "m", [(item, VECTOR) for item in pending], T0)
        changing.commit()

    assert stored == 2  # the memory and the turn; the fact was skipped, not waited for
    with database.read() as conn:
        [again] = store.unembedded(conn, "m", limit=10)
    assert (again.id, again.text) == ("f1", 'favourite food: {"dish": "ramen"}')
