"""``increment`` hands a bot the committed value: unique across worker processes.

A bot may use the value as a ticket or order number. Each turn of the ``ticketer`` bot takes
one number from bot memory (shared by everyone) and one from the person's user memory (one
person writing in many groups, so their turns run in parallel), records both, and then waits
until the test sees every turn holding its numbers before it answers: all turns are in
flight at once, across three workers, while none has committed. An increment that waited
for the turn's commit (or held a lock until then) would either hand out the same numbers or
stop the other turns from getting theirs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.telegram_api import FakeTelegramAPI

from .harness import RECORDING_BOT, Deployment

pytestmark = pytest.mark.slow  # worker processes

TURNS = 24  # 8 a worker: under max_turns, so every turn is in flight at once
WORKERS = 3
PERSON = 714_001  # an id no other test of the session uses
FIRST_GROUP = -1_007_140_000_001

TICKET_BOT = (
    RECORDING_BOT
    + """

    async def on_message(ctx):
        ticket = await ctx.bot.memory.increment("ticket")
        mine = await ctx.user.memory.increment("tickets")
        record("took", f"{ticket} {mine}")
        while not (LOG / "release").exists():  # the bot "waits on a model"
            await asyncio.sleep(0.02)
        await ctx.say(f"ticket {ticket}, yours {mine}")
"""
)


async def test_concurrent_increments_in_three_workers_return_1_to_n(
    postgres_database: str, tmp_path: Path
) -> None:
    groups = [FIRST_GROUP - n for n in range(TURNS)]
    with FakeTelegramAPI() as tg:
        d = Deployment(
            tmp_path,
            postgres_database,
            tg,
            token="7140:tickets",
            channel="tg-tickets",
            bot="ticketer",
            bot_py=TICKET_BOT,
        )
        try:
            d.start(WORKERS)
            async with httpx.AsyncClient(timeout=60) as client:
                posted = [
                    d.post(client, d.workers[n % WORKERS], d.group_update(chat, PERSON, f"t{n}"))
                    for n, chat in enumerate(groups)
                ]
                assert await asyncio.gather(*posted) == [200] * TURNS

            def all_took(events: list[dict[str, Any]]) -> bool:
                return len([e for e in events if e["kind"] == "took"]) >= TURNS

            took = await asyncio.to_thread(d.wait_events, all_took, 60.0)
            pairs = [tuple(map(int, e["text"].split())) for e in took if e["kind"] == "took"]
            (tmp_path / "release").touch()
            await asyncio.to_thread(tg.wait_for_sent, TURNS, token=d.token, timeout=60)
            d.stop()

            assert len({e["pid"] for e in took}) == WORKERS
            assert sorted(ticket for ticket, _ in pairs) == list(range(1, TURNS + 1))
            assert sorted(mine for _, mine in pairs) == list(range(1, TURNS + 1))
            assert d.memory("telegram", str(PERSON), "tickets") == TURNS
            replies = sorted(r for chat in groups for r in d.replies_by_chat()[chat])
            assert replies == sorted(f"ticket {t}, yours {m}" for t, m in pairs)
        finally:
            d.stop()
