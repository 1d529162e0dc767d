"""Concurrent writers lose no update: separate threads, each with its own connections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import MemoryFull
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope, MemoryStore
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import USERS
from tests.support import Chat, write_bot

THREADS = 6
EACH = 40


def in_threads(
    db_url: str, clock: ManualClock, work: Callable[[MemoryStore, int], Any]
) -> list[Any]:
    """Run ``work(store, index)`` in THREADS threads at once, each with its own engine."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def worker(index: int) -> None:
        db = Database(db_url)
        db.start()
        try:
            store = MemoryStore(db, clock)
            barrier.wait()
            results[index] = work(store, index)
        except BaseException as exc:
            results[index] = exc
        finally:
            db.stop()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def add_user(db: Database, clock: ManualClock, user_id: str = "u") -> None:
    with db.write() as conn:
        conn.execute(insert(USERS).values(id=user_id, display_name=user_id, created_at=clock.now()))


def user_scope(store: MemoryStore, policy: UserMemoryPolicy | None = None) -> MemoryScope:
    return MemoryScope(store, store.user_ref("u", policy or UserMemoryPolicy()))


async def test_increment_and_append_lose_no_update(database: Database, db_url: str, clock):
    add_user(database, clock)

    def work(store: MemoryStore, index: int) -> None:
        async def bump() -> None:
            for i in range(EACH):
                await user_scope(store).increment("counter")
                await MemoryScope(store, store.bot_ref("b")).increment("total", 0.5)
                await user_scope(store).append("log", [index, i])

        asyncio.run(bump())

    errors = [r for r in in_threads(db_url, clock, work) if r is not None]
    assert errors == []
    store = MemoryStore(database, clock)
    assert await user_scope(store).get("counter") == THREADS * EACH
    assert await MemoryScope(store, store.bot_ref("b")).get("total") == THREADS * EACH * 0.5
    log = await user_scope(store).get("log")
    assert sorted(map(tuple, log)) == [(t, i) for t in range(THREADS) for i in range(EACH)]


async def test_max_keys_holds_when_writers_race_for_the_last_key(database, db_url, clock):
    add_user(database, clock)
    policy = UserMemoryPolicy(max_keys=5)
    store = MemoryStore(database, clock)
    for i in range(4):
        await user_scope(store, policy).set(f"k{i}", i)

    def work(store: MemoryStore, index: int) -> str:
        try:
            asyncio.run(user_scope(store, policy).set(f"new{index}", index))
        except MemoryFull:
            return "full"
        return "written"

    results = in_threads(db_url, clock, work)
    assert sorted(results) == ["full"] * (THREADS - 1) + ["written"]
    assert len(await user_scope(store, policy).items()) == 5


async def test_concurrent_writes_of_one_key_end_with_one_written_value(database, db_url, clock):
    add_user(database, clock)
    values = [{"writer": i, "payload": [i] * 50} for i in range(THREADS)]

    def work(store: MemoryStore, index: int) -> None:
        async def write() -> None:
            for _ in range(10):
                await user_scope(store).set("profile", values[index])

        asyncio.run(write())

    assert [r for r in in_threads(db_url, clock, work) if r is not None] == []
    assert await user_scope(MemoryStore(database, clock)).get("profile") in values


async def test_many_conversations_bumping_one_counter_through_the_runtime(
    make_runtime, tmp_path: Path
):
    write_bot(
        tmp_path,
        "stats",
        bot_py="""
            async def on_message(ctx):
                n = await ctx.bot.memory.increment("total_messages")
                await ctx.user.memory.increment("my_messages")
                await ctx.say(f"seen {n}")
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    chats = [Chat(runtime, bot="stats", user=f"user{i}") for i in range(12)]

    await asyncio.gather(*(chat.say(f"hello {n}") for chat in chats for n in range(3)))

    assert runtime.memory.read_value(runtime.memory.bot_ref("stats"), "total_messages") == 36
    for chat in chats:
        ref = runtime.memory.user_ref(await chat.user_id(), UserMemoryPolicy())
        assert runtime.memory.read_value(ref, "my_messages") == 3
