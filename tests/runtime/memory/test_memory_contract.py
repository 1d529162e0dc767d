"""The memory contract, on SQLite and on PostgreSQL, directly and inside a turn.

"direct" commits every call at once; "turn" buffers writes in PendingWrites and commits
them together, as the runtime does for a bot turn. Both must give the same answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import InvalidKey, InvalidValue, MemoryDisabled, MemoryFull
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore, PendingWrites
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import USER_MEMORY, USERS

VALUES: list[Any] = [
    "pt-BR",
    "",  # only as a nested value: top-level "" means clear
    0,
    -17,
    3.25,
    10**15,
    True,
    False,
    None,
    [],
    {},
    [1, "two", 3.0, None, True, {"four": [4]}],
    {"orderId": "A-1001", "amount": 99.9, "items": [{"sku": "x", "qty": 2}], "paid": True},
    'unicode: ção, 日本語, emoji 🎉, quote " and backslash \\',
    {"nested": {"deeper": {"deepest": ["ok"]}}},
]


class Memory:
    """User memory of several users on one store, in one of the two modes."""

    def __init__(self, store: MemoryStore, mode: str) -> None:
        self.store = store
        self.mode = mode
        self.writes: PendingWrites | None = PendingWrites() if mode == "turn" else None

    def user(self, user_id: str, policy: UserMemoryPolicy | None = None) -> MemoryScope:
        return MemoryScope(
            self.store, self.store.user_ref(user_id, policy or UserMemoryPolicy()), self.writes
        )

    def bot(self, name: str) -> MemoryScope:
        return MemoryScope(self.store, self.store.bot_ref(name), self.writes)

    async def commit(self) -> None:
        if self.writes is not None:
            self.store.commit(self.writes)
            self.writes = PendingWrites()

    def fresh(self, user_id: str, policy: UserMemoryPolicy | None = None) -> MemoryScope:
        """A direct scope that reads only what is committed."""
        return MemoryScope(self.store, self.store.user_ref(user_id, policy or UserMemoryPolicy()))


@pytest.fixture(params=["direct", "turn"])
def memory(request: pytest.FixtureRequest, database: Database, clock: ManualClock) -> Memory:
    with database.write() as conn:
        for user_id in ("alice", "bob"):
            conn.execute(
                insert(USERS).values(id=user_id, display_name=user_id, created_at=clock.now())
            )
    return Memory(MemoryStore(database, clock), request.param)


def committed_rows(database: Database, user_id: str) -> int:
    with database.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(USER_MEMORY)
                .where(USER_MEMORY.c.user_id == user_id)
            ).scalar_one()
        )


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
async def test_values_come_back_exactly_as_stored(memory: Memory, value: Any) -> None:
    alice = memory.user("alice")
    await alice.set("k", {"wrapped": value})
    assert await alice.get("k") == {"wrapped": value}
    await memory.commit()
    back = await memory.fresh("alice").get("k")
    assert back == {"wrapped": value}
    assert type(back["wrapped"]) is type(value)


async def test_top_level_values_keep_their_type(memory: Memory) -> None:
    alice = memory.user("alice")
    for key, value in [("s", "x"), ("i", 7), ("f", 7.5), ("b", False), ("n", None), ("l", [1])]:
        await alice.set(key, value)
    await memory.commit()
    got = await memory.fresh("alice").items()
    assert got == {"s": "x", "i": 7, "f": 7.5, "b": False, "n": None, "l": [1]}
    assert type(got["i"]) is int and type(got["b"]) is bool and type(got["f"]) is float


async def test_missing_key_gives_none_or_the_default(memory: Memory) -> None:
    alice = memory.user("alice")
    assert await alice.get("nothing") is None
    assert await alice.get("nothing", "") == ""
    assert await alice.get("nothing", 42) == 42


async def test_setting_empty_string_clears_the_key(memory: Memory) -> None:
    alice = memory.user("alice")
    await alice.set("handoff_context", {"topic": "billing"})
    await memory.commit()
    alice = memory.user("alice")
    await alice.set("handoff_context", "")
    assert await alice.get("handoff_context") is None
    await memory.commit()
    assert await memory.fresh("alice").get("handoff_context") is None
    assert committed_rows(memory.store.db, "alice") == 0


async def test_keys_are_case_sensitive(memory: Memory) -> None:
    alice = memory.user("alice")
    await alice.set("Name", "upper")
    await alice.set("name", "lower")
    await memory.commit()
    fresh = memory.fresh("alice")
    assert await fresh.get("Name") == "upper"
    assert await fresh.get("name") == "lower"
    assert await fresh.get("NAME") is None


async def test_one_users_memory_is_not_anothers(memory: Memory) -> None:
    await memory.user("alice").set("language", "pt-BR")
    await memory.commit()
    assert await memory.user("bob").get("language") is None
    assert await memory.fresh("bob").items() == {}


async def test_bot_memory_is_per_bot_and_shared_by_users(memory: Memory) -> None:
    await memory.bot("sales-bot").set("welcome_message", "Hello!")
    await memory.commit()
    assert await memory.bot("sales-bot").get("welcome_message") == "Hello!"
    assert await memory.bot("support-bot").get("welcome_message") is None


async def test_memory_type_from_argument_or_key_prefix(memory: Memory) -> None:
    alice = memory.user("alice")
    await alice.set("company", "Acme", memory_type="fact")
    await alice.set("fact_role", "PM")
    await alice.set("ctx_last_topic", "sales")
    await alice.set("pref_theme", "dark")
    await alice.set("plain", 1)
    await memory.commit()
    types = {r.key: r.memory_type for r in await memory.fresh("alice").rows()}
    assert types == {
        "company": "fact",
        "fact_role": "fact",
        "ctx_last_topic": "context",
        "pref_theme": "preference",
        "plain": "preference",
    }
    with pytest.raises(InvalidValue, match="memory_type"):
        await memory.user("alice").set("x", 1, memory_type="secret")


async def test_rewriting_a_key_keeps_its_type_unless_the_write_says_otherwise(
    memory: Memory,
) -> None:
    alice = memory.user("alice")
    await alice.set("company", "Acme", memory_type="fact")  # SET USER FACT "company", "Acme"
    await memory.commit()

    await memory.user("alice").set("company", "Acme 2")  # SET USER MEMORY "company", "Acme 2"
    await memory.user("alice").increment("visits")  # a new key without a type: a preference
    await memory.commit()

    types = {r.key: (r.value, r.memory_type) for r in await memory.fresh("alice").rows()}
    assert types == {"company": ("Acme 2", "fact"), "visits": (1, "preference")}
    await memory.user("alice").set("company", "Acme 3", memory_type="preference")
    await memory.user("alice").increment("visits")  # an increment keeps the type too
    await memory.commit()
    types = {r.key: (r.value, r.memory_type) for r in await memory.fresh("alice").rows()}
    assert types == {"company": ("Acme 3", "preference"), "visits": (2, "preference")}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "set"),
        (float("nan"), "NaN"),
        (float("inf"), "NaN"),
        ((1, 2), "tuple"),
        ({1: "a"}, "not a string"),
        (object(), "object"),
        (b"bytes", "bytes"),
    ],
    ids=["set", "nan", "inf", "tuple", "int-key", "object", "bytes"],
)
async def test_a_value_that_is_not_json_is_refused_and_nothing_written(
    memory: Memory, value: Any, message: str
) -> None:
    alice = memory.user("alice")
    with pytest.raises(InvalidValue, match=message):
        await alice.set("k", value)
    await memory.commit()
    assert committed_rows(memory.store.db, "alice") == 0


async def test_an_oversized_value_is_refused(memory: Memory) -> None:
    alice = memory.user("alice", UserMemoryPolicy(max_value_bytes=1000))
    await alice.set("ok", "x" * 900)
    with pytest.raises(InvalidValue, match=r"too large: 1[0-9]{3} bytes, the limit is 1000"):
        await alice.set("big", "x" * 1001)
    await memory.commit()
    assert set(await memory.fresh("alice").items()) == {"ok"}


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, 5, None])
async def test_a_bad_key_is_refused(memory: Memory, key: Any) -> None:
    with pytest.raises(InvalidKey):
        await memory.user("alice").set(key, "v")


async def test_ttl_per_write_expires_at_once_when_the_clock_passes(
    memory: Memory, clock: ManualClock
) -> None:
    alice = memory.user("alice")
    await alice.set("temp_auth_code", {"code": 1234}, ttl=300)
    await alice.set("forever", 1)
    await memory.commit()
    clock.advance(299)
    assert await memory.fresh("alice").get("temp_auth_code") == {"code": 1234}
    clock.advance(1)
    fresh = memory.fresh("alice")
    assert await fresh.get("temp_auth_code") is None
    assert await fresh.items() == {"forever": 1}
    assert committed_rows(memory.store.db, "alice") == 2  # the janitor deletes it later


async def test_default_ttl_from_the_bot_config(memory: Memory, clock: ManualClock) -> None:
    policy = UserMemoryPolicy(default_ttl=60)
    await memory.user("alice", policy).set("mood", "happy")
    await memory.user("alice", policy).set("kept", "yes", ttl=0)  # 0 = never, overrides default
    await memory.commit()
    clock.advance(61)
    assert await memory.fresh("alice").items() == {"kept": "yes"}


async def test_retention_policy_per_key_restarts_at_each_write(
    memory: Memory, clock: ManualClock
) -> None:
    policy = UserMemoryPolicy(retention={"mood": 86400, "email": 60 * 86400})
    await memory.user("alice", policy).set("mood", "happy")
    await memory.user("alice", policy).set("email", "a@example.com")
    await memory.commit()
    clock.advance(hours=23)
    await memory.user("alice", policy).set("mood", "tired")  # the clock restarts
    await memory.commit()
    clock.advance(hours=23)
    assert await memory.fresh("alice").get("mood") == "tired"
    clock.advance(hours=2)
    assert await memory.fresh("alice").get("mood") is None
    assert await memory.fresh("alice").get("email") == "a@example.com"
    clock.advance(days=59)
    assert await memory.fresh("alice").get("email") is None


async def test_a_write_past_max_keys_fails_with_memory_full_and_changes_nothing(
    memory: Memory,
) -> None:
    policy = UserMemoryPolicy(max_keys=3)
    alice = memory.user("alice", policy)
    for key in ("a", "b", "c"):
        await alice.set(key, 1)
    await memory.commit()
    alice = memory.user("alice", policy)
    await alice.set("a", 2)  # replacing a key is fine at the limit
    with pytest.raises(MemoryFull, match=r"user memory full: 3 keys \(user-memory-max-keys\)"):
        await alice.set("d", 1)
    await memory.commit()
    assert await memory.fresh("alice").items() == {"a": 2, "b": 1, "c": 1}


async def test_expired_keys_do_not_count_against_max_keys(
    memory: Memory, clock: ManualClock
) -> None:
    policy = UserMemoryPolicy(max_keys=2)
    await memory.user("alice", policy).set("temp", 1, ttl=10)
    await memory.user("alice", policy).set("keep", 1)
    await memory.commit()
    clock.advance(11)
    await memory.user("alice", policy).set("new", 1)
    await memory.commit()
    assert await memory.fresh("alice").items() == {"keep": 1, "new": 1}


async def test_disabled_user_memory_refuses_reads_and_writes(memory: Memory) -> None:
    off = memory.user("alice", UserMemoryPolicy(enabled=False))
    with pytest.raises(MemoryDisabled, match="user-memory-enabled,false"):
        await off.set("k", 1)
    with pytest.raises(MemoryDisabled):
        await off.get("k")


async def test_increment_and_append(memory: Memory) -> None:
    bot = memory.bot("stats-bot")
    assert await bot.increment("total_conversations") == 1
    assert await bot.increment("total_conversations", 2) == 3
    assert await bot.increment("ratio", 0.5) == 0.5
    alice = memory.user("alice")
    assert await alice.append("choices_history", {"choice": "a"}) == [{"choice": "a"}]
    assert await alice.append("choices_history", "b") == [{"choice": "a"}, "b"]
    await memory.commit()
    assert await memory.bot("stats-bot").get("total_conversations") == 3
    assert await memory.fresh("alice").get("choices_history") == [{"choice": "a"}, "b"]


async def test_increment_of_a_non_number_and_append_to_a_non_list_are_refused(
    memory: Memory,
) -> None:
    alice = memory.user("alice")
    await alice.set("name", "Ana")
    await alice.set("n", 1)
    with pytest.raises(InvalidValue, match="not a number"):
        await alice.increment("name")
    with pytest.raises(InvalidValue, match="not a list"):
        await alice.append("n", 2)
    with pytest.raises(InvalidValue, match="needs a number"):
        await alice.increment("n", "1")  # type: ignore[arg-type]
    await memory.commit()
    assert await memory.fresh("alice").items() == {"name": "Ana", "n": 1}


async def test_facts_are_listed_apart_from_other_keys(memory: Memory) -> None:
    from mnemobot.runtime.bots.context import FactsView

    facts = FactsView(memory.user("alice"))
    await facts.set("company", "Acme Corp")
    await facts.set("role", "Product Manager")
    await memory.user("alice").set("language", "en")
    await memory.user("alice").set("fact_occupation", "software engineer")
    await memory.commit()
    assert await FactsView(memory.fresh("alice")).all() == {
        "company": "Acme Corp",
        "role": "Product Manager",
        "fact_occupation": "software engineer",
    }


Op = Callable[[MemoryScope], Awaitable[Any]]


async def test_a_turn_sees_its_own_writes_before_commit(
    database: Database, clock: ManualClock
) -> None:
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="u", display_name="u", created_at=clock.now()))
    store = MemoryStore(database, clock)
    writes = PendingWrites()
    scope = MemoryScope(store, store.user_ref("u", UserMemoryPolicy()), writes)
    outside = MemoryScope(store, store.user_ref("u", UserMemoryPolicy()))
    await scope.set("b", 1)
    await scope.set("b", [1])
    await scope.append("b", 2)
    await scope.delete("c")
    assert await scope.get("b") == [1, 2]
    assert await outside.get("b") is None
    store.commit(writes)
    assert await outside.get("b") == [1, 2]


async def test_an_increment_in_a_turn_commits_at_once_with_the_turns_writes_to_its_key(
    database: Database, clock: ManualClock
) -> None:
    """The value a bot gets is the committed one (unique across workers: a ticket number);
    the turn's earlier writes to that key go first, so the turn's order holds."""
    with database.write() as conn:
        conn.execute(insert(USERS).values(id="u", display_name="u", created_at=clock.now()))
    store = MemoryStore(database, clock)
    writes = PendingWrites()
    scope = MemoryScope(store, store.user_ref("u", UserMemoryPolicy()), writes)
    outside = MemoryScope(store, store.user_ref("u", UserMemoryPolicy()))
    await scope.set("a", 1)
    await scope.set("other", "pending")
    assert await scope.increment("a", 4) == 5
    assert await outside.get("a") == 5  # committed, with the set before it
    assert await outside.get("other") is None  # the rest still waits for the turn
    assert await outside.increment("a") == 6  # another worker's increment
    assert await scope.increment("a") == 7
    assert await scope.get("a") == 7
    await scope.delete("a")
    await scope.append("a", "x")
    assert await scope.get("a") == ["x"]
    assert await outside.get("a") == 7
    store.commit(writes)
    assert await outside.get("a") == ["x"]
    assert await outside.get("other") == "pending"
