"""Forget removes every row of one person and nothing of anyone else; export shows it all."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, insert, select
from sqlmodel import SQLModel

from mnemobot.runtime.errors import UnknownUser
from mnemobot.runtime.people.privacy import export_user, forget_user
from mnemobot.runtime.storage.tables import (
    EPISODES,
    FACT_HISTORY,
    LLM_USAGE,
    MERGES,
    PERSONAL_TABLES,
    USER_MEMORIES,
    new_id,
)
from tests.support import Chat


async def populate(runtime, clock, name: str) -> str:
    """A person with rows in every personal table."""
    sales = Chat(runtime, bot="sales-bot", user=name)
    for line in ("hi", name.title(), "English", "I need support with my login"):
        await sales.say(line)
    await sales.say("/end")  # a session ended -> a job
    await sales.say("/link")  # a link code
    await sales.say("/link 000000")  # a failed attempt (unless it is the code: 1 in a million)
    await sales.say("which plans do you have?")  # session memory in the new session
    user_id = await sales.user_id()
    with runtime.db.write() as conn:
        conn.execute(
            insert(EPISODES).values(
                id=new_id(),
                user_id=user_id,
                conversation_id=new_id(),
                bot="sales-bot",
                summary=f"{name} asked for support",
                topics=["support"],
                created_at=clock.now(),
            )
        )
        conn.execute(
            insert(FACT_HISTORY).values(
                id=new_id(),
                user_id=user_id,
                key="fact_name",
                value=name.title(),
                action="add",
                source="extraction",
                bot="sales-bot",
                model="fast",
                created_at=clock.now(),
            )
        )
        conn.execute(
            insert(USER_MEMORIES).values(
                id=new_id(),
                user_id=user_id,
                memory=f"{name} prefers short answers",
                topics=["style"],
                source="bot",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        conn.execute(
            insert(LLM_USAGE).values(
                id=new_id(),
                user_id=user_id,
                bot="sales-bot",
                model="fake",
                prompt_tokens=10,
                completion_tokens=2,
                created_at=clock.now(),
            )
        )
        conn.execute(
            insert(MERGES).values(
                id=new_id(),
                from_user_id=new_id(),
                into_user_id=user_id,
                details={},
                merged_at=clock.now(),
            )
        )
    return user_id


def rows_of(runtime, user_id: str) -> dict[str, int]:
    counts = {}
    with runtime.db.read() as conn:
        for name, column in PERSONAL_TABLES.items():
            table = SQLModel.metadata.tables[name]
            counts[name] = conn.execute(
                select(func.count()).select_from(table).where(table.c[column] == user_id)
            ).scalar_one()
        counts["merges"] = conn.execute(
            select(func.count()).select_from(MERGES).where(MERGES.c.into_user_id == user_id)
        ).scalar_one()
    return counts


async def test_forget_removes_everything_of_one_person_and_nothing_of_another(make_runtime, clock):
    runtime = await make_runtime()
    ana = await populate(runtime, clock, "ana")
    bob = await populate(runtime, clock, "bob")
    before_bob = rows_of(runtime, bob)
    before_ana = rows_of(runtime, ana)
    # recall_vectors: only with [memory] embedding on (tests/runtime/recall/test_semantic.py)
    empty = ("link_attempts", "recall_vectors")
    assert all(before_ana[t] > 0 for t in before_ana if t not in empty), before_ana

    removed = forget_user(runtime.db, ana)

    assert removed == before_ana
    assert all(count == 0 for count in rows_of(runtime, ana).values())
    assert rows_of(runtime, bob) == before_bob
    with pytest.raises(UnknownUser):
        runtime.identity.find("ana")
    with pytest.raises(UnknownUser):
        forget_user(runtime.db, ana)
    bot_memory = runtime.memory.read_rows(runtime.memory.bot_ref("sales-bot"))
    assert [r.key for r in bot_memory] == ["handoffs_to_support"]  # bots' own memory stays


async def test_export_is_one_json_document_of_everything_held(make_runtime, clock):
    runtime = await make_runtime()
    ana = await populate(runtime, clock, "ana")
    await populate(runtime, clock, "bob")

    document = export_user(runtime.db, ana)
    text = json.dumps(document)  # serialisable as it is

    assert document["user_id"] == ana
    memory = {row["key"]: row["value"] for row in document["user_memory"]}
    assert memory["name"] == "Ana" and memory["language"] == "en"
    assert [i["external_id"] for i in document["identities"]] == ["ana"]
    assert any(t["text"] == "I need support with my login" for t in document["turns"])
    assert document["episodes"][0]["summary"] == "ana asked for support"
    assert len(document["merges"]) == 1
    assert "Bob" not in text and "bob" not in text
    for table, rows in rows_of(runtime, ana).items():
        assert len(document[table]) == rows, table


def test_every_table_with_a_user_id_is_covered_by_forget_and_export():
    with_user = {t.name for t in SQLModel.metadata.sorted_tables if "user_id" in t.c}
    assert with_user <= set(PERSONAL_TABLES) | {"merges"}


def scan(runtime, needles: dict[str, str]) -> list[tuple[str, str, str]]:
    """Every (table, what, row) of the database, every table and column, holding a needle.

    The audit log keeps the user id of a forget, and only that (documented).
    """
    from sqlalchemy import inspect, text

    found = []
    with runtime.db.read() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    if table == "audit_log" and column == "subject_user_id":
                        continue
                    if isinstance(value, bytes):
                        seen = value.decode("utf-8", "replace")
                    else:
                        seen = json.dumps(value, default=str, ensure_ascii=False)
                    found += [(table, what, seen) for what, n in needles.items() if n in seen]
    return found


@pytest.mark.parametrize("path", ["command", "chat"])
async def test_after_forget_no_table_holds_a_trace_of_the_person(make_runtime, clock, path):
    """Issue 14: the inbox row of ``/forget yes`` itself, its reply's chat id, and an event
    stored but unanswered all went; another person's export is byte for byte the same."""
    from mnemobot.runtime.messages import InboundMessage
    from mnemobot.runtime.storage.tables import USERS

    runtime = await make_runtime()
    quill = await populate(runtime, clock, "quillonby")
    bob = await populate(runtime, clock, "bob")
    with runtime.db.write() as conn:
        conn.execute(USERS.update().where(USERS.c.id == quill).values(email="qb@mail.example"))
    stored = {
        r.key: r.value for r in runtime.memory.read_rows(runtime.memory.user_ref(quill, _policy()))
    }
    unanswered = InboundMessage(
        channel="console:sales-bot",
        channel_kind="console",
        external_user_id="quillonby",
        chat_id="quillonby",
        text="one more thing from Quillonby",
        event_id="evt-unanswered",
        display_name="Quillonby Q",
        payload={"from": {"username": "quill_user_x", "first_name": "Quillonby"}},
    )
    assert runtime.inbox.receive(unanswered).is_new
    bob_before = json.dumps(export_user(runtime.db, bob), sort_keys=True)

    if path == "command":
        forget_user(runtime.db, quill)
    else:
        chat = Chat(runtime, bot="sales-bot", user="quillonby")
        await chat.say("/forget")
        [confirmation] = await chat.say("/forget yes")
        assert "forgot" in confirmation.lower() or "deleted" in confirmation.lower()

    needles = {
        "user id": quill,
        "external id": "quillonby",
        "name": "Quillonby",
        "username": "quill_user_x",
        "e-mail": "qb@mail.example",
        **{f"value of {k}": str(v) for k, v in stored.items() if len(str(v)) >= 6},
    }
    assert scan(runtime, needles) == []
    assert json.dumps(export_user(runtime.db, bob), sort_keys=True) == bob_before
    # Forgotten events stay forgotten: a redelivery is a duplicate, not a new person.
    assert not runtime.inbox.receive(unanswered).is_new
    assert runtime.inbox.unfinished() == []
    with pytest.raises(UnknownUser):
        runtime.identity.find("quillonby")


def _policy():
    from mnemobot.runtime.memory.policy import UserMemoryPolicy

    return UserMemoryPolicy()
