"""The pieces several workers rely on, driven directly: catch-up order, claims, locks, janitor.

Two runtimes on one database stand for two workers here; the process-level proof is in
``test_workers.py``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.conversations.locks import LocalLocks, PgAdvisoryLocks, try_xact_lock
from mnemobot.runtime.messages import InboundMessage, OutboundMessage
from mnemobot.runtime.pipeline.delivery import Delivery
from mnemobot.runtime.pipeline.recovery import Reclaimer
from mnemobot.runtime.storage.tables import OUTBOX
from tests.support import eventually, write_bot

COUNTER_BOT = """
    async def on_message(ctx):
        seen = list(await ctx.user.memory.get("seen") or [])
        seen.append(ctx.text)
        await ctx.user.memory.set("seen", seen)
        await ctx.say(f"{len(seen) - 1}: {ctx.text}")
"""
CHANNEL = "console:counter"


def message(text: str, event_id: str, user: str = "ana") -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL,
        channel_kind="console",
        external_user_id=user,
        chat_id=user,
        text=text,
        event_id=event_id,
    )


class RecordingChannel:
    """The far side of a channel: what the person would see, in order."""

    name = CHANNEL
    kind = "console"
    delivery: Delivery

    def __init__(self) -> None:
        self.sent: list[str] = []

    def routes(self) -> list[Any]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, reply: OutboundMessage) -> None:
        self.sent.append(reply.text)


class Sink(Delivery):
    """The real delivery of one worker, over a :class:`RecordingChannel`."""

    def __init__(self, runtime: Any) -> None:
        self.recorder = RecordingChannel()
        super().__init__(runtime.delivery_services, self.recorder)
        self.recorder.delivery = self

    @property
    def sent(self) -> list[str]:
        return self.recorder.sent


async def two_workers(make_runtime: Any, tmp_path: Path) -> tuple[Any, Any]:
    write_bot(tmp_path, "counter", bot_py=COUNTER_BOT)
    first, second = await make_runtime(bots_dir=tmp_path), await make_runtime(bots_dir=tmp_path)
    for runtime in (first, second):
        runtime.bind_channel(CHANNEL, bot="counter")
    return first, second


async def test_a_turn_answers_the_earlier_unanswered_events_of_its_conversation_first(
    make_runtime: Any, tmp_path: Path
) -> None:
    first, second = await two_workers(make_runtime, tmp_path)
    one, two = message("one", "e1"), message("two", "e2")
    assert await first.accept(one) and await second.accept(two)  # stored by two workers

    late = await second.handle(two)  # reaches the lock first
    early = await first.handle(one)

    assert [r.text for r in late.replies] == ["0: one", "1: two"]
    assert early.duplicate and early.replies == []


async def test_with_deliver_each_turns_replies_leave_while_the_conversation_is_held(
    make_runtime: Any, tmp_path: Path
) -> None:
    first, second = await two_workers(make_runtime, tmp_path)
    sink = Sink(second)
    for n in range(3):
        assert await first.accept(message(f"m{n}", f"e{n}"))

    await sink.process(message("m2", "e2"))
    await Sink(first).process(message("m0", "e0"))

    assert sink.sent == ["0: m0", "1: m1", "2: m2"]


async def test_a_reclaimer_takes_only_stale_events_and_two_do_not_take_the_same(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    first, second = await two_workers(make_runtime, tmp_path)
    assert await first.accept(message("left behind", "e1"))
    sinks = [Sink(first), Sink(second)]
    reclaimers = [
        Reclaimer(rt.delivery_services, {CHANNEL: sink}, reclaim_after=60, send_lease=60)
        for rt, sink in zip((first, second), sinks, strict=True)
    ]

    assert [await r.run_once() for r in reclaimers] == [{"events": 0, "replies": 0}] * 2
    clock.advance(61)
    counts = await asyncio.gather(*(r.run_once() for r in reclaimers))

    assert sorted(c["events"] for c in counts) == [0, 1]
    assert sinks[0].sent + sinks[1].sent == ["0: left behind"]


async def test_replies_committed_but_never_sent_are_sent_once_after_the_lease(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    first, second = await two_workers(make_runtime, tmp_path)
    result = await first.handle(message("hi", "e1"))  # committed; then the worker died
    assert [r.text for r in result.replies] == ["0: hi"]
    sinks = [Sink(first), Sink(second)]
    reclaimers = [
        Reclaimer(rt.delivery_services, {CHANNEL: sink}, reclaim_after=60, send_lease=30)
        for rt, sink in zip((first, second), sinks, strict=True)
    ]

    await asyncio.gather(*(r.run_once() for r in reclaimers))
    assert sinks[0].sent + sinks[1].sent == []  # its sender may still be at it
    clock.advance(31)
    await asyncio.gather(*(r.run_once() for r in reclaimers))
    clock.advance(31)
    await asyncio.gather(*(r.run_once() for r in reclaimers))

    assert sinks[0].sent + sinks[1].sent == ["0: hi"]
    with first.db.read() as conn:
        assert conn.execute(select(OUTBOX.c.status)).scalars().all() == ["sent"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_reclaimer_waits_for_a_live_sender_past_its_lease_and_sends_nothing(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    """A claim lapses while its worker is still sending (a long rate-limit wait): the
    reclaimer of another worker claims the reply but must not send it a second time."""
    first, second = await two_workers(make_runtime, tmp_path)
    msg = message("hi", "e1")
    result = await first.handle(msg)
    sinks = [Sink(first), Sink(second)]
    reclaimer = Reclaimer(
        second.delivery_services, {CHANNEL: sinks[1]}, reclaim_after=60, send_lease=30
    )

    async with first.locks.hold(msg.conversation):  # the first worker, still sending
        clock.advance(31)
        reclaiming = asyncio.create_task(reclaimer.run_once())
        await eventually(
            lambda: _claimed_at(first) == clock.now(), within=20, what="the lapsed reply claimed"
        )
        assert not reclaiming.done(), "the reclaimer waits for the conversation"
        await sinks[0].send_all(result.replies)
    counts = await reclaiming

    assert counts["replies"] == 1  # it did claim the reply...
    assert sinks[0].sent == ["0: hi"]
    assert sinks[1].sent == []  # ...and found it sent once it held the conversation
    with first.db.read() as conn:
        assert conn.execute(select(OUTBOX.c.status)).scalars().all() == ["sent"]


def _claimed_at(runtime: Any) -> Any:
    with runtime.db.read() as conn:
        return conn.execute(select(OUTBOX.c.claimed_at)).scalar_one()


async def test_a_failed_send_gives_its_claim_back(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    first, _ = await two_workers(make_runtime, tmp_path)
    result = await first.handle(message("hi", "e1"))
    await first.db.run(first.outbox.release, [r.id for r in result.replies])

    earlier = clock.now() - timedelta(seconds=1)  # only claims older than now lapse
    again = await first.db.run(first.outbox.claim_unsent, CHANNEL, claimed_before=earlier)
    assert [r.text for r in again] == ["0: hi"]
    assert await first.db.run(first.outbox.claim_unsent, CHANNEL, claimed_before=earlier) == []


async def test_advisory_locks_serialise_one_conversation_and_let_others_run(
    postgres_database: str,
) -> None:
    from mnemobot.runtime.storage.database import Database

    dbs = [Database(postgres_database), Database(postgres_database)]
    for db in dbs:
        db.start()
    locks = [PgAdvisoryLocks(db, max_held=4) for db in dbs]  # as in two processes
    spans: dict[str, tuple[float, float]] = {}

    async def turn(lock: PgAdvisoryLocks, conversation: str, name: str) -> None:
        async with lock.hold(conversation):
            start = time.monotonic()
            await asyncio.sleep(0.3)
            spans[name] = (start, time.monotonic())

    try:
        await asyncio.gather(
            turn(locks[0], "c1", "a"), turn(locks[1], "c1", "b"), turn(locks[1], "c2", "c")
        )
    finally:
        for lock, db in zip(locks, dbs, strict=True):
            lock.close()
            db.stop()

    (a0, a1), (b0, b1), (c0, c1) = spans["a"], spans["b"], spans["c"]
    assert a1 <= b0 or b1 <= a0, "one conversation: one turn at a time"
    assert c0 < max(a1, b1) and min(a0, b0) < c1, "another conversation runs meanwhile"


async def test_runtimes_pick_their_locks_by_database(make_runtime: Any, tmp_path: Path) -> None:
    first, _ = await two_workers(make_runtime, tmp_path)
    expected = LocalLocks if first.db.is_sqlite else PgAdvisoryLocks
    assert isinstance(first.locks, expected)


async def test_one_janitor_sweeps_at_a_time(make_runtime: Any, tmp_path: Path) -> None:
    first, second = await two_workers(make_runtime, tmp_path)
    if first.db.is_sqlite:
        assert first.janitor.sweep_all() is not None
        return
    with first.db.write() as conn:
        assert try_xact_lock(conn, "janitor")  # another worker's janitor is mid-pass
        assert second.janitor.sweep_all() == {}
    assert "sessions_ended" in second.janitor.sweep_all()
