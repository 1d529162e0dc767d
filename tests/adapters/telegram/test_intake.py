"""Crash-safe polling intake: stored before confirmed, once per update, whatever happens."""

from __future__ import annotations

import time

from telegram import Bot, Update

from .conftest import ECHO_CHANNEL
from .support import ECHO, Person, eventually, inbox_rows, pending_replies

ANA = Person(777, "Ana")
CARLOS = Person(999, "Carlos")


async def test_the_same_update_delivered_twice_is_answered_once(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")
    update = echo.push(ANA, "only once")
    await echo.settle(update)

    deployment.tg.push_update(ECHO, update)  # Telegram delivers it again (same update_id)
    await echo.settle(update)
    later = echo.push(ANA, "next")
    await echo.settle(later)

    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["echo: only once", "echo: next"]
    assert [r.event_id for r in inbox_rows(deployment.runtime)] == [
        str(update["update_id"]),
        str(later["update_id"]),
    ]


async def test_stored_but_unanswered_is_answered_once_after_a_crash(deploy, echo_bots):
    """The process died after the inbox commit, before the turn and before the offset moved."""
    crashed = await deploy(ECHO_CHANNEL, bots_dir=echo_bots, start=False)
    channel = crashed.channel("echo-telegram")
    update = crashed.tg.push_message(ECHO, 777, 777, "are you there?")
    msg = await channel.convert(Update.de_json(update, channel.bot))
    assert msg is not None
    assert await channel.delivery.accept(msg)  # stored; then the "crash": nothing more
    await channel.stop()
    await crashed.runtime.stop()
    assert crashed.tg.confirmed_offset(ECHO) is None  # Telegram will deliver it again

    restarted = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)  # recover(), then polling
    echo = restarted.line("echo-telegram")
    await echo.settle(update)

    assert [m.text for m in restarted.tg.sent_messages(ECHO)] == ["echo: are you there?"]
    assert [(r.event_id, r.status) for r in inbox_rows(restarted.runtime)] == [
        (str(update["update_id"]), "done")
    ]
    assert restarted.tg.pending_updates(ECHO) == []


async def test_database_down_the_offset_stays_until_the_update_is_stored(deploy, echo_bots, outage):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots, start=False)
    channel = deployment.channel("echo-telegram")
    echo = deployment.line("echo-telegram")
    down = outage(deployment.runtime)
    down.begin()
    await channel.start()
    update = echo.push(ANA, "hello?")
    polls = len(deployment.tg.calls("getUpdates", ECHO))
    await eventually(
        lambda: len(deployment.tg.calls("getUpdates", ECHO)) >= polls + 3, what="retries"
    )

    tg = deployment.tg
    assert tg.confirmed_offset(ECHO) is None
    assert [u["update_id"] for u in tg.pending_updates(ECHO)] == [update["update_id"]]
    assert tg.sent_messages(ECHO) == []
    assert all(
        r.params.get("offset") in (None, update["update_id"]) for r in tg.calls("getUpdates", ECHO)
    )

    down.end()
    await echo.settle(update)
    assert [m.text for m in tg.sent_messages(ECHO)] == ["echo: hello?"]


async def test_updates_from_before_the_start_are_taken_and_a_webhook_is_dropped(
    deploy, tg, echo_bots
):
    async with Bot(ECHO, base_url=tg.base_url) as bot:
        await bot.set_webhook("http://127.0.0.1:9/old-hook")
    first = tg.push_message(ECHO, 777, 777, "sent while we were down")

    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots)
    await deployment.line("echo-telegram").settle(first)

    assert tg.webhook(ECHO) == {}
    assert [m.text for m in tg.sent_messages(ECHO)] == ["echo: sent while we were down"]


async def test_stop_ends_the_long_poll_at_once_and_confirms_what_was_stored(tg, deploy, echo_bots):
    deployment = await deploy({**ECHO_CHANNEL, "poll_timeout": 30}, bots_dir=echo_bots)
    echo = deployment.line("echo-telegram")
    update = echo.push(ANA, "hi")
    await turn_done(deployment, update)
    await eventually(lambda: tg.polls_waiting(ECHO), what="the next long poll (30 s)")

    started = time.monotonic()
    await deployment.channel("echo-telegram").stop()
    assert time.monotonic() - started < 2
    assert tg.confirmed_offset(ECHO) == update["update_id"] + 1
    assert tg.pending_updates(ECHO) == []


async def test_two_people_in_a_batch_each_get_their_answer(deploy, echo_bots):
    deployment = await deploy(ECHO_CHANNEL, bots_dir=echo_bots, start=False)
    echo = deployment.line("echo-telegram")
    a = echo.push(ANA, "from Ana")
    c = echo.push(CARLOS, "from Carlos")
    await deployment.start()
    await echo.settle(a)
    await echo.settle(c)
    tg = deployment.tg
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=777)] == ["echo: from Ana"]
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=999)] == ["echo: from Carlos"]
    assert pending_replies(deployment.runtime, "echo-telegram") == 0


# -- helpers --------------------------------------------------------------------------------


async def turn_done(deployment, update) -> None:
    await eventually(
        lambda: (
            any(
                r.event_id == str(update["update_id"]) and r.status == "done"
                for r in inbox_rows(deployment.runtime)
            )
            and pending_replies(deployment.runtime, "echo-telegram") == 0
        ),
        what="turn done",
    )
