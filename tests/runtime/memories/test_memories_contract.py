"""Free-text memories' contract, on SQLite and on PostgreSQL, directly and inside a turn.

"direct" commits every call at once; "turn" buffers the writes in the turn's PendingWrites
and commits them with the key/value writes, as the runtime does. Both answer alike, refuse
the same bad input with the same errors, and lose nothing when they refuse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import InvalidValue, MemoryDisabled, MemoryFull, UnknownMemory
from mnemobot.runtime.memories import MemoriesStore, MemoriesView, Memory, Origin
from mnemobot.runtime.memories.record import MAX_TEXT_CHARS, MemoriesMode
from mnemobot.runtime.memories.store import Change, delete_stale_in
from mnemobot.runtime.memories.view import PendingMemories
from mnemobot.runtime.memory.store import MemoryStore, PendingWrites
from mnemobot.runtime.people.privacy import export_user, forget_user
from mnemobot.runtime.recall.query import search_terms
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import FullText
from mnemobot.runtime.storage.tables import USER_MEMORIES, USERS

ORIGIN = Origin("bot", bot="support-bot", session_id="s-1")


class Memories:
    """Memories of several people on one database, in one of the two modes."""

    def __init__(self, database: Database, clock: ManualClock, mode: str) -> None:
        self.database = database
        self.clock = clock
        self.store = MemoriesStore(database, clock)
        self.kv = MemoryStore(database, clock)
        self.mode = mode
        self.writes: PendingWrites | None = PendingWrites() if mode == "turn" else None

    def of(self, user_id: str, *, mode: MemoriesMode = "manual", limit: int = 1000) -> MemoriesView:
        return MemoriesView(
            self.store,
            self.clock,
            user_id=user_id,
            mode=mode,
            limit=limit,
            origin=ORIGIN,
            writes=self.writes,
        )

    async def commit(self) -> None:
        """Commit the turn's writes; the views made so far go on as the next turn's."""
        if self.writes is not None:
            self.kv.commit(self.writes)
            for pending in self.writes.deferred.values():
                assert isinstance(pending, PendingMemories)
                pending.ops.clear()

    def stored(self, user_id: str) -> list[dict[str, Any]]:
        """What the database holds, whatever any view has pending."""
        with self.database.read() as conn:
            rows = conn.execute(
                select(USER_MEMORIES)
                .where(USER_MEMORIES.c.user_id == user_id)
                .order_by(USER_MEMORIES.c.created_at)
            ).mappings()
            return [dict(r) for r in rows]


@pytest.fixture(params=["direct", "turn"])
def memories(request: pytest.FixtureRequest, database: Database, clock: ManualClock) -> Memories:
    with database.write() as conn:
        for user_id in ("alice", "bob"):
            conn.execute(
                insert(USERS).values(id=user_id, display_name=user_id, created_at=clock.now())
            )
    return Memories(database, clock, request.param)


async def test_add_returns_the_memory_with_its_id_and_text(memories: Memories) -> None:
    alice = memories.of("alice")
    note = await alice.add(
        "  Prefers concise answers, no preamble. ",
        topics=["style", "style", "answers"],
        input="please be brief",
    )
    assert isinstance(note, Memory) and note.id
    assert note.text == note.memory == "Prefers concise answers, no preamble."
    assert note.topics == ("style", "answers")
    assert note.input == "please be brief"
    assert await alice.get(note.id) == note
    assert [m.id for m in await alice.list()] == [note.id]
    await memories.commit()
    [row] = memories.stored("alice")
    assert row["id"] == note.id and row["memory"] == note.text
    assert row["topics"] == ["style", "answers"]
    assert (row["source"], row["bot"], row["session_id"]) == ("bot", "support-bot", "s-1")
    assert row["input"] == "please be brief"


async def test_upsert_edits_in_place_and_keeps_what_it_is_not_given(
    memories: Memories, clock: ManualClock
) -> None:
    alice = memories.of("alice")
    note = await alice.add("Works at Acme", topics=["work"], input="I work at Acme")
    await memories.commit()
    clock.advance(60)
    edited = await alice.upsert(note.id, "Works at Globex since May")
    assert edited.id == note.id and edited.memory == "Works at Globex since May"
    assert edited.topics == ("work",) and edited.input == "I work at Acme"
    await memories.commit()
    [row] = memories.stored("alice")
    assert row["memory"] == "Works at Globex since May" and row["topics"] == ["work"]
    assert row["created_at"] == note.created_at and row["updated_at"] > note.updated_at
    again = await alice.upsert(note.id, "Works at Globex", topics=["job"])
    assert again.topics == ("job",)


async def test_delete_and_delete_many(memories: Memories) -> None:
    alice = memories.of("alice")
    first = await alice.add("Has a dog called Rex")
    second = await alice.add("Lives in Lisbon")
    third = await alice.add("Plays the cello")
    await memories.commit()
    await alice.delete(first.id)
    assert await alice.delete_many([second.id, third.id]) == 2
    assert await alice.list() == []
    assert await alice.get(first.id) is None
    await memories.commit()
    assert memories.stored("alice") == []


async def test_unknown_ids_are_clear_errors_and_change_nothing(memories: Memories) -> None:
    alice = memories.of("alice")
    kept = await alice.add("Lives in Lisbon")
    await memories.commit()
    with pytest.raises(UnknownMemory, match="no memory 'nope'"):
        await alice.upsert("nope", "anything")
    with pytest.raises(UnknownMemory, match="'nope'"):
        await alice.delete("nope")
    with pytest.raises(UnknownMemory, match="'nope'"):  # all or none: kept stays
        await alice.delete_many([kept.id, "nope"])
    await memories.commit()
    assert [r["id"] for r in memories.stored("alice")] == [kept.id]
    assert memories.stored("alice")[0]["memory"] == "Lives in Lisbon"


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda m: m.add(""), "is empty"),
        (lambda m: m.add("   "), "is empty"),
        (lambda m: m.add("x" * (MAX_TEXT_CHARS + 1)), f"at most {MAX_TEXT_CHARS}"),
        (lambda m: m.add(42), "must be a string"),
        (lambda m: m.add("ok", topics="work"), "topics must be a list"),
        (lambda m: m.add("ok", topics=[1, 2]), "each topic must be a string"),
        (lambda m: m.add("ok", topics=["x" * 65]), "longer than 64"),
        (lambda m: m.add("ok", input=["not text"]), "input must be a string"),
        (lambda m: m.delete_many("abc"), "ids must be a list"),
        (lambda m: m.delete(""), "non-empty string"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(
    memories: Memories, call: Any, problem: str
) -> None:
    alice = memories.of("alice")
    kept = await alice.add("Lives in Lisbon")
    await memories.commit()
    with pytest.raises(InvalidValue, match=problem):
        await call(alice)
    with pytest.raises(InvalidValue):
        await alice.upsert(kept.id, "")
    await memories.commit()
    [row] = memories.stored("alice")
    assert row["memory"] == "Lives in Lisbon"


async def test_the_limit_refuses_the_memory_past_it(memories: Memories) -> None:
    alice = memories.of("alice", limit=2)
    await alice.add("one")
    await alice.add("two")
    with pytest.raises(MemoryFull, match="user memories full: 2 memories"):
        await alice.add("three")
    await memories.commit()
    assert [r["memory"] for r in memories.stored("alice")] == ["one", "two"]
    [first] = [m for m in await alice.list() if m.text == "one"]
    await alice.delete(first.id)  # room again
    await alice.add("three")
    await memories.commit()
    assert sorted(r["memory"] for r in memories.stored("alice")) == ["three", "two"]


async def test_the_limit_holds_at_commit_too(database: Database, clock: ManualClock) -> None:
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="alice", display_name="a", created_at=clock.now()))
    store, kv = MemoriesStore(database, clock), MemoryStore(database, clock)
    writes = PendingWrites()
    turn = MemoriesView(
        store, clock, user_id="alice", mode="manual", limit=1, origin=ORIGIN, writes=writes
    )
    await turn.add("from the turn")
    store.add("alice", "written meanwhile by an operator", (), origin=Origin("cli"), limit=1)
    with pytest.raises(MemoryFull):
        kv.commit(writes)
    assert [m.text for m in store.list("alice")] == ["written meanwhile by an operator"]


async def test_modes_off_and_agentic(memories: Memories) -> None:
    with pytest.raises(MemoryDisabled, match="user-memories,off"):
        await memories.of("alice", mode="off").list()
    with pytest.raises(MemoryDisabled, match="user-memories,off"):
        await memories.of("alice", mode="off").add("x")
    agentic = memories.of("alice", mode="agentic")
    assert await agentic.list() == []  # reading is allowed
    for write in (agentic.add("x"), agentic.upsert("id", "x"), agentic.delete("id")):
        with pytest.raises(MemoryDisabled, match="user-memories,agentic"):
            await write
    await memories.commit()
    assert memories.stored("alice") == []


async def test_one_persons_memory_is_never_anothers(memories: Memories) -> None:
    secret = await memories.of("alice").add("Alice's secret")
    await memories.commit()
    bob = memories.of("bob")
    assert await bob.list() == []
    assert await bob.get(secret.id) is None
    with pytest.raises(UnknownMemory):
        await bob.upsert(secret.id, "hijacked")
    with pytest.raises(UnknownMemory):
        await bob.delete(secret.id)
    await memories.commit()
    assert memories.stored("alice")[0]["memory"] == "Alice's secret"


async def test_a_failed_turn_leaves_no_memory(database: Database, clock: ManualClock) -> None:
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="alice", display_name="a", created_at=clock.now()))
    store = MemoriesStore(database, clock)
    writes = PendingWrites()
    view = MemoriesView(
        store, clock, user_id="alice", mode="manual", limit=10, origin=ORIGIN, writes=writes
    )
    await view.add("never committed")
    writes.clear()  # what the runtime does when the bot raised
    MemoryStore(database, clock).commit(writes)
    assert store.list("alice") == []


async def test_recall_index_follows_adds_edits_and_deletes(
    memories: Memories, clock: ManualClock
) -> None:
    alice = memories.of("alice")
    note = await alice.add("Allergic to peanuts", topics=["health"])
    await memories.commit()
    fulltext = FullText(memories.database)

    def found(words: str) -> list[str]:
        with memories.database.read() as conn:
            rows = fulltext.search(
                conn, "user_memories", "alice", search_terms(words), limit=5, now=clock.now()
            )
        return [r["memory"] for r in rows]

    assert found("peanuts") == ["Allergic to peanuts"]
    assert found("health") == ["Allergic to peanuts"]  # topics are searched too
    with memories.database.read() as conn:  # never another person's
        assert (
            fulltext.search(
                conn, "user_memories", "bob", search_terms("peanuts"), limit=5, now=clock.now()
            )
            == []
        )
    await alice.upsert(note.id, "Allergic to shellfish")
    await memories.commit()
    assert found("peanuts") == []
    assert found("shellfish") == ["Allergic to shellfish"]
    await alice.delete(note.id)
    await memories.commit()
    assert found("shellfish") == []
    await alice.add("Allergic to shellfish again")
    await memories.commit()
    fulltext.rebuild()  # `mnemobot db reindex`
    assert found("shellfish") == ["Allergic to shellfish again"]


async def test_forget_and_export_cover_memories(memories: Memories) -> None:
    await memories.of("alice").add("Lives in Lisbon", topics=["home"])
    await memories.of("bob").add("Lives in Porto")
    await memories.commit()
    document = export_user(memories.database, "alice")
    [exported] = document["user_memories"]
    assert exported["memory"] == "Lives in Lisbon" and exported["topics"] == ["home"]
    removed = forget_user(memories.database, "alice")
    assert removed["user_memories"] == 1
    assert memories.stored("alice") == []
    assert [r["memory"] for r in memories.stored("bob")] == ["Lives in Porto"]


async def test_retention_deletes_memories_unchanged_for_too_long(
    memories: Memories, clock: ManualClock
) -> None:
    alice = memories.of("alice")
    old = await alice.add("Old news")
    kept = await alice.add("Touched lately")
    await memories.commit()
    clock.advance(86400 * 10)
    await alice.upsert(kept.id, "Touched lately, again")
    await memories.commit()
    with memories.database.write() as conn:
        assert delete_stale_in(conn, clock.now() - timedelta(days=5), 100) == 1
    assert [r["id"] for r in memories.stored("alice")] == [kept.id]
    assert old.id not in {r["id"] for r in memories.stored("alice")}


async def test_the_janitor_deletes_memories_unchanged_for_janitor_user_memories(
    make_runtime, clock: ManualClock
) -> None:
    runtime = await make_runtime(janitor={"user_memories": "30d"})
    with runtime.db.write() as conn:
        conn.execute(insert(USERS).values(id="ana", display_name="Ana", created_at=clock.now()))
    store = runtime.memories
    old = store.add("ana", "Liked the old plan", (), origin=ORIGIN, limit=10)
    kept = store.add("ana", "Likes the new plan", (), origin=ORIGIN, limit=10)
    clock.advance(days=20)
    store.edit("ana", kept.id, Change("Likes the new plan a lot"), origin=ORIGIN)
    clock.advance(days=15)

    assert runtime.janitor.sweep_all()["user_memories"] == 1
    assert [m.id for m in store.list("ana")] == [kept.id]
    assert old.id not in {m.id for m in store.list("ana")}
    kept_forever = await make_runtime()  # 0, the default: memories are permanent
    clock.advance(days=3650)
    assert kept_forever.janitor.sweep_all()["user_memories"] == 0
    assert [m.id for m in store.list("ana")] == [kept.id]
