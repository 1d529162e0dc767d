"""The reclaimer takes over what a dead worker left, and never a turn that is still running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.messages import InboundMessage, OutboundMessage
from mnemobot.runtime.pipeline.delivery import Delivery
from mnemobot.runtime.pipeline.recovery import Reclaimer
from tests.support import write_bot

CHANNEL = "console:slow"
RECLAIM_AFTER = 60

# The test holds the turn open (RELEASE) and knows when it has begun (STARTED).
SLOW_BOT = """
import asyncio

STARTED = asyncio.Event()
RELEASE = asyncio.Event()

async def on_message(ctx):
    STARTED.set()
    await RELEASE.wait()
    await ctx.say("done: " + ctx.text)
"""


class Recorder:
    """A channel that keeps what it is asked to send."""

    name = CHANNEL

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, reply: OutboundMessage) -> None:
        self.sent.append(reply.text)


def message(text: str, event_id: str) -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL,
        channel_kind="console",
        external_user_id="ana",
        chat_id="ana",
        text=text,
        event_id=event_id,
    )


async def worker(make_runtime: Any, bots_dir: Path) -> tuple[Any, Delivery, Recorder]:
    runtime = await make_runtime(bots_dir=bots_dir)
    runtime.bind_channel(CHANNEL, bot="slow")
    recorder = Recorder()
    return runtime, Delivery(runtime.delivery_services, recorder), recorder


def bot_hooks(runtime: Any) -> dict[str, asyncio.Event]:
    """The slow bot's STARTED and RELEASE events (module globals of the loaded bot.py)."""
    return runtime.bots.get("slow").on_message.__globals__  # type: ignore[no-any-return]


async def test_a_long_turn_of_this_worker_is_not_taken_over(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    """Past ``reclaim_after``, a turn that is still running is slow, not dead: left alone."""
    write_bot(tmp_path, "slow", bot_py=SLOW_BOT)
    runtime, delivery, recorder = await worker(make_runtime, tmp_path)
    hooks = bot_hooks(runtime)
    reclaimer = Reclaimer(
        runtime.delivery_services,
        {CHANNEL: delivery},
        reclaim_after=RECLAIM_AFTER,
        send_lease=RECLAIM_AFTER,
    )
    try:
        assert await delivery.receive(message("hi", "e1"))
        await asyncio.wait_for(hooks["STARTED"].wait(), timeout=30)
        clock.advance(RECLAIM_AFTER + 1)

        # Taking it over would wait on the running turn's conversation: the pass would hang.
        counts = await asyncio.wait_for(reclaimer.run_once(), timeout=30)

        assert counts == {"events": 0, "replies": 0}
    finally:
        hooks["RELEASE"].set()
        await delivery.drain()
    assert recorder.sent == ["done: hi"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_long_turn_of_another_worker_is_not_taken_over(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    write_bot(tmp_path, "slow", bot_py=SLOW_BOT)
    first, first_delivery, first_sent = await worker(make_runtime, tmp_path)
    second, second_delivery, second_sent = await worker(make_runtime, tmp_path)
    hooks = bot_hooks(first)
    reclaimer = Reclaimer(
        second.delivery_services,
        {CHANNEL: second_delivery},
        reclaim_after=RECLAIM_AFTER,
        send_lease=RECLAIM_AFTER,
    )
    try:
        assert await first_delivery.receive(message("hi", "e1"))
        await asyncio.wait_for(hooks["STARTED"].wait(), timeout=30)
        clock.advance(RECLAIM_AFTER + 1)

        counts = await asyncio.wait_for(reclaimer.run_once(), timeout=30)

        assert counts == {"events": 0, "replies": 0}
    finally:
        hooks["RELEASE"].set()
        await first_delivery.drain()
    assert (first_sent.sent, second_sent.sent) == (["done: hi"], [])


async def test_an_event_left_by_a_dead_worker_is_still_taken_over(
    make_runtime: Any, tmp_path: Path, clock: ManualClock
) -> None:
    """The other side of the rule: nobody holds the conversation, so the event is answered."""
    write_bot(tmp_path, "slow", bot_py=SLOW_BOT)
    runtime, delivery, recorder = await worker(make_runtime, tmp_path)
    bot_hooks(runtime)["RELEASE"].set()
    assert await runtime.accept(message("anyone?", "e1"))  # stored, then the worker "died"
    clock.advance(RECLAIM_AFTER + 1)
    reclaimer = Reclaimer(
        runtime.delivery_services,
        {CHANNEL: delivery},
        reclaim_after=RECLAIM_AFTER,
        send_lease=RECLAIM_AFTER,
    )

    counts = await asyncio.wait_for(reclaimer.run_once(), timeout=30)

    assert counts["events"] == 1
    assert recorder.sent == ["done: anyone?"]
