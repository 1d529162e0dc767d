"""One person's memory written from several conversations at once, in two worker processes.

The conversation lock serialises the turns of one conversation only. One Telegram user
addressing the bot in several groups has one conversation per group (group, user) but one
user memory: their turns run in parallel, in both workers, and all write the same keys.
Each turn of the ``tally`` bot

* sets ``pair`` to ``{"a": text, "b": text}``: a value whose fields must agree; it must end
  as exactly one of the values written, the one of the turn that committed last;
* calls ``increment("count")`` and ``append("log", text)``: atomic, so none may be lost;
* sets ``rmw`` to the value it read plus one (read, add, write): the control that shows
  the turns really raced, since that one does lose updates.

First every group sends one ``hold`` message, spread over both workers: each such turn reads
its memory, then waits until the test sees all of them started (so they all overlap, across
both processes, deterministically), then writes. Then each group sends more messages at
random to either worker, all groups at once.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.telegram_api import FakeTelegramAPI

from .harness import RECORDING_BOT, Deployment

pytestmark = pytest.mark.slow  # worker processes: minutes on a busy machine

GROUPS = 8
MESSAGES_PER_GROUP = 15  # after the first, held one
PERSON = 710_001  # an id no other test of the session uses
FIRST_GROUP = -1_007_100_000_001  # supergroup ids are negative
MAX_GAP = 0.03
SEED = 7
NO_PACING = {
    "chat_rate": 1000.0,
    "chat_burst": 1000,
    "group_rate": 1000.0,
    "group_burst": 1000,
    "overall_rate": 10000.0,
}

TALLY_BOT = (
    RECORDING_BOT
    + """

    async def on_message(ctx):
        text = ctx.text
        before = await ctx.user.memory.get("rmw", 0)
        await ctx.user.memory.get("pair")
        record("start", text)
        if text.startswith("hold"):
            while not (LOG / "release").exists():
                await asyncio.sleep(0.02)
        else:
            await asyncio.sleep(0.02)  # a wider window for the turns of other groups
        await ctx.user.memory.set("pair", {"a": text, "b": text})
        await ctx.user.memory.set("rmw", before + 1)
        await ctx.user.memory.increment("count")
        await ctx.user.memory.append("log", text)
        record("end", text)
        await ctx.say(f"ok {text}")
"""
)


def overlapping_pairs(events: list[dict[str, Any]], texts: set[str]) -> int:
    """How many pairs of these turns, run by different processes, overlapped in time."""
    start = {e["text"]: e for e in events if e["kind"] == "start" and e["text"] in texts}
    end = {e["text"]: e for e in events if e["kind"] == "end" and e["text"] in texts}
    spans = [(start[t]["pid"], start[t]["t"], end[t]["t"]) for t in texts]
    return sum(
        1
        for i, (pid, begin, finish) in enumerate(spans)
        for other_pid, other_begin, other_finish in spans[i + 1 :]
        if pid != other_pid and begin < other_finish and other_begin < finish
    )


async def test_one_persons_memory_written_from_groups_in_two_workers_loses_nothing(
    postgres_database: str, tmp_path: Path
) -> None:
    groups = [FIRST_GROUP - n for n in range(GROUPS)]
    held = {chat: f"hold g{n}" for n, chat in enumerate(groups)}
    later = {
        chat: [f"g{n} m{i}" for i in range(MESSAGES_PER_GROUP)] for n, chat in enumerate(groups)
    }
    texts = {chat: [held[chat], *later[chat]] for chat in groups}
    every_text = {t for chat in groups for t in texts[chat]}
    rng = random.Random(SEED)

    with FakeTelegramAPI() as tg:
        d = Deployment(
            tmp_path,
            postgres_database,
            tg,
            token="7100:lost",
            channel="tg-lost",
            bot="tally",
            bot_py=TALLY_BOT,
            pacing=NO_PACING,
        )
        try:
            d.start(2)
            pids = {w.process.pid for w in d.workers}
            async with httpx.AsyncClient(timeout=60) as client:
                # 1. One held turn per group, alternately in each worker: all overlap.
                for n, chat in enumerate(groups):
                    update = d.group_update(chat, PERSON, held[chat])
                    assert await d.post(client, d.workers[n % 2], update) == 200

                def all_held(events: list[dict[str, Any]]) -> bool:
                    return {e["text"] for e in events if e["kind"] == "start"} >= {*held.values()}

                started = await asyncio.to_thread(d.wait_events, all_held, 30.0)
                assert {e["pid"] for e in started} == pids
                assert not [e for e in started if e["kind"] == "end"]
                (tmp_path / "release").touch()
                await asyncio.to_thread(tg.wait_for_sent, GROUPS, token=d.token, timeout=60)
                after_held = {
                    key: d.memory("telegram", str(PERSON), key) for key in ("count", "rmw")
                }

                # 2. Every group at once, each message to a random worker.
                async def talk(chat: int, chat_rng: random.Random) -> None:
                    for text in later[chat]:
                        update = d.group_update(chat, PERSON, text)
                        assert await d.post(client, chat_rng.choice(d.workers), update) == 200
                        await asyncio.sleep(chat_rng.uniform(0, MAX_GAP))

                await asyncio.gather(*(talk(chat, random.Random(rng.random())) for chat in groups))
            total = GROUPS * (1 + MESSAGES_PER_GROUP)
            await asyncio.to_thread(tg.wait_for_sent, total, token=d.token, timeout=120)
            d.stop()  # nothing more reaches the fake after this

            # The held turns all read before any wrote: a read-modify-write kept one of eight.
            assert after_held == {"count": GROUPS, "rmw": 1}
            events = d.events()
            raced = overlapping_pairs(events, every_text - {*held.values()})
            assert raced > 0, "no two later turns in different workers overlapped"

            # What the person saw: each message answered once, in order, in its group.
            assert d.replies_by_chat() == {
                chat: [f"ok {text}" for text in texts[chat]] for chat in groups
            }

            # What their memory holds.
            memory = {
                key: d.memory("telegram", str(PERSON), key)
                for key in ("count", "log", "pair", "rmw")
            }
            assert memory["count"] == total
            log = memory["log"]
            assert sorted(log) == sorted(every_text)
            for chat in groups:  # one conversation's turns commit in its order
                assert [t for t in log if t in texts[chat]] == texts[chat]
            # Commits of one person are serialised: the last in the log wrote the pair last.
            assert memory["pair"] == {"a": log[-1], "b": log[-1]}
            assert 1 <= memory["rmw"] <= total

            assert d.inbox_by_conversation("tg-lost") == {
                f"tg-lost|{chat}|{PERSON}": ["done"] * (1 + MESSAGES_PER_GROUP) for chat in groups
            }
            assert d.outbox_counts("tg-lost") == {"sent": total}
        except BaseException:  # a timeout too: it is raised in the test
            print(d.diagnosis("tg-lost"))
            raise
        finally:
            d.stop()
        print(
            f"\nlost update: {total} turns of one person in {GROUPS} groups; "
            f"{raced} pairs of later turns overlapped across workers; "
            f"read-modify-write kept {memory['rmw']} of {total}"
        )
