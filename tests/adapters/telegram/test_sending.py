"""Sending: split in order, plain text, 429 per chat, paced, retried, never lost."""

from __future__ import annotations

import asyncio

from mnemobot.adapters.telegram.pacing import Pacer, Pacing
from mnemobot.adapters.text import split_text
from mnemobot.runtime.messages import OutboundMessage

from .conftest import ECHO_CHANNEL, LONG_REPLY
from .support import ECHO, Person, eventually, pending_replies

ANA = Person(777, "Ana")
CARLOS = Person(999, "Carlos")


async def test_a_10000_character_reply_arrives_as_3_messages_in_order(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")

    parts = await echo.says(ANA, "long")

    assert len(LONG_REPLY) == 10_000
    assert parts == split_text(LONG_REPLY, 4096)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == LONG_REPLY.strip()


async def test_formatting_characters_arrive_intact(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")
    said = "*bold_ [link](http://x) `code` <b>&amp; \\ _under_ ~x~ ||s|| 1.5!"

    assert await echo.says(ANA, said) == [f"echo: {said}"]
    (sent,) = deployment.tg.sent_messages(ECHO)
    assert (sent.rendered, sent.parse_mode) == (f"echo: {said}", None)


async def test_429_holds_that_chat_only_while_other_chats_flow(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    tg, echo = deployment.tg, deployment.line("echo-telegram")
    tg.fail_next(ECHO, "sendMessage", chat_id=777, retry_after=1)

    ana = echo.push(ANA, "twice for Ana")
    carlos = echo.push(CARLOS, "twice for Carlos")
    await echo.settle(ana)
    await echo.settle(carlos)

    calls = tg.calls("sendMessage", ECHO)
    to_ana = [c for c in calls if c.params["chat_id"] == "777"]
    to_carlos = [c for c in calls if c.params["chat_id"] == "999"]
    refused, retried = to_ana[0].time, to_ana[1].time
    assert retried - refused >= 0.95  # retry_after honoured for Ana's chat
    assert all(c.time < refused + 0.5 for c in to_carlos)  # Carlos did not wait for it
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=777)] == [
        "first: for Ana",
        "second: for Ana",
    ]
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=999)] == [
        "first: for Carlos",
        "second: for Carlos",
    ]


async def test_transient_errors_are_retried(deploy, echo_bots, caplog):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    deployment.tg.fail_next(ECHO, "sendMessage", status=502, times=2)

    assert await deployment.line("echo-telegram").says(ANA, "hi") == ["echo: hi"]
    assert len(deployment.tg.calls("sendMessage")) == 3
    # each retry is logged: one that follows a timeout may have shown the person the part twice
    retried = [r for r in caplog.records if "retrying, which may send it twice" in r.message]
    assert len(retried) == 2 and all(r.levelname == "WARNING" for r in retried)


async def test_a_reply_that_keeps_failing_stays_pending_and_is_sent_after_restart(
    deploy, echo_bots
):
    first = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    tg = first.tg
    tg.fail_next(ECHO, "sendMessage", status=502, times=4)  # the first try and 3 retries
    first.line("echo-telegram").push(ANA, "please arrive")
    await eventually(
        lambda: (
            len(tg.calls("sendMessage")) == 4
            and pending_replies(first.runtime, "echo-telegram") == 1
        ),
        what="the send to give up",
    )
    await first.stop()
    assert tg.sent_messages(ECHO) == []

    second = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)  # recover() sends what is pending
    assert [m.text for m in tg.sent_messages(ECHO)] == ["echo: please arrive"]
    assert pending_replies(second.runtime, "echo-telegram") == 0


async def test_a_refusal_is_not_retried_and_the_reply_stays_pending(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    deployment.tg.fail_next(ECHO, "sendMessage", status=403)  # the person blocked the bot
    deployment.line("echo-telegram").push(ANA, "hi")
    await eventually(
        lambda: (
            pending_replies(deployment.runtime, "echo-telegram") == 1
            and len(deployment.tg.calls("sendMessage")) == 1
        ),
        what="the refused reply",
    )
    await asyncio.sleep(0.2)
    assert len(deployment.tg.calls("sendMessage")) == 1


async def test_replies_to_one_chat_are_paced(deploy, echo_bots):
    paced = {**ECHO_CHANNEL, "pacing": {"chat_rate": 5, "chat_burst": 1}}
    deployment = await deploy(paced, bots_dir=echo_bots)
    channel = deployment.channel("echo-telegram")

    await asyncio.gather(
        *(
            channel.send(OutboundMessage(f"r{i}", channel.name, "777", "echo-bot", f"m{i}", 0))
            for i in range(4)
        )
    )

    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["m0", "m1", "m2", "m3"]
    # Measured by the pacer's own clock (when it let each send go), not by when the fake
    # server happened to read the request. 5 a second: the k-th send goes at least k/5 s
    # after the first. (One gap may be shorter than 0.2 s when the send before it woke
    # late: a token bucket keeps the rate, not each gap.)
    released = [at for chat, at in channel.pacer.released if chat == "777"]
    assert len(released) == 4
    since_first = [at - released[0] for at in released]
    assert all(since >= k * 0.2 - 1e-3 for k, since in enumerate(since_first)), since_first


class FakeTime:
    """A monotonic clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


async def test_pacer_keeps_telegram_limits_per_chat_group_and_overall():
    time = FakeTime()
    pacer = Pacer(Pacing(), clock=time.clock, sleep=time.sleep)

    for _ in range(5):
        await pacer.wait("777")  # a private chat: a burst of 3, then one per second
    assert time.slept == [1.0, 1.0]

    time.slept.clear()
    for _ in range(5):
        await pacer.wait("-100")  # a group: 20 a minute
    assert time.slept == [3.0, 3.0]

    time = FakeTime()
    pacer = Pacer(Pacing(), clock=time.clock, sleep=time.sleep)
    for chat in range(40):  # 40 different chats at once: 30 per second overall
        await pacer.wait(str(1000 + chat))
    assert len(time.slept) == 10
    assert sum(time.slept) <= 10 / 30 + 0.01
