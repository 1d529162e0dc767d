"""Each Slack delivery rule of issue 4 as a test: signature, staleness, retries, crashes, fast
acks, ignored echoes, long replies, 429 per channel, mrkdwn escaping, a database outage."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.adapters.slack.channel import SlackChannel
from mnemobot.runtime.storage.tables import OUTBOX
from tests.fakes.slack_api import message_event, url_verification_payload

from .conftest import BOT_ID, BOT_USER, SECRET, TOKEN


def dm(text: str, user: str = "U1ANN", channel: str = "D1ANN", **extra: Any) -> dict[str, Any]:
    return message_event(channel=channel, user=user, text=text, bot_user_id=BOT_USER, **extra)


async def test_url_verification_is_answered_with_the_challenge(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")

    response = await h.post(url_verification_payload("abc123"))

    assert (response.status_code, response.json()) == (200, {"challenge": "abc123"})


async def test_a_bad_signature_gets_401_and_stores_nothing(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")

    response = await h.post(dm("hi"), secret="not-the-signing-secret")
    await h.settle()

    assert response.status_code == 401
    assert h.inbox_rows() == 0
    assert h.slack.posted_messages() == []


async def test_a_stale_timestamp_gets_401_and_stores_nothing(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")

    response = await h.post(dm("hi"), timestamp=int(time.time()) - 6 * 60)
    await h.settle()

    assert response.status_code == 401
    assert h.inbox_rows() == 0
    assert h.slack.posted_messages() == []


async def test_a_retry_after_a_successful_delivery_is_handled_once(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")
    event = dm("hello")

    first = await h.post(event)
    assert await h.posted(1) == ["you said: hello"]
    retry = await h.post(event, retry_num=1)
    await h.settle()

    assert (first.status_code, retry.status_code) == (200, 200)
    assert [m.text for m in h.slack.posted_messages()] == ["you said: hello"]
    assert h.inbox_rows() == 1


async def test_a_retry_racing_the_first_attempt_is_handled_once(make_harness: Any) -> None:
    h = await make_harness(bot="slow-bot")
    event = dm("hello")

    await h.post(event)
    await h.thinking()
    await h.post(event, retry_num=1)  # Slack gave up waiting; the first turn is still running
    h.answer()
    await h.settle()

    assert [m.text for m in h.slack.posted_messages()] == ["thought about it: hello"]


async def test_a_retry_of_a_first_attempt_that_crashed_after_storing_is_answered_once(
    make_harness: Any,
) -> None:
    crashed = await make_harness(bot="echo-bot")
    event = dm("are you there?")
    msg = crashed.channel.inbound(event)
    assert msg is not None
    assert await crashed.channel.delivery.accept(msg)  # stored; then the process died

    restarted = await make_harness(bot="echo-bot")  # recover() ran first, in make_harness
    retry = await restarted.post(event, retry_num=1)
    await restarted.settle()

    assert retry.status_code == 200
    assert await restarted.posted(1) == ["you said: are you there?"]
    assert len(restarted.slack.posted_messages()) == 1


async def test_a_retry_of_a_first_attempt_that_crashed_before_storing_is_answered(
    make_harness: Any,
) -> None:
    h = await make_harness(bot="echo-bot")

    response = await h.post(dm("first try was lost"), retry_num=2)

    assert response.status_code == 200
    assert await h.posted(1) == ["you said: first try was lost"]


async def test_the_ack_comes_back_before_a_slow_bot_answers(make_harness: Any) -> None:
    h = await make_harness(bot="slow-bot")

    async with asyncio.timeout(10):  # the bot answers only when let: an ack after it never comes
        response = await h.post(dm("think hard"))
    acked_at = time.time()
    posted_at_ack = list(h.slack.posted_messages())
    h.answer()

    assert response.status_code == 200
    assert posted_at_ack == []
    assert await h.posted(1) == ["thought about it: think hard"]
    assert h.slack.calls("chat.postMessage")[0].time > acked_at


async def test_a_turn_in_flight_at_shutdown_still_sends_its_reply(make_harness: Any) -> None:
    h = await make_harness(bot="slow-bot")
    response = await h.post(dm("think hard"))
    await h.thinking()
    assert response.status_code == 200 and h.slack.posted_messages() == []

    stopping = asyncio.create_task(h.channel.stop())  # as mnemobot run does on SIGTERM
    for _ in range(10):  # let the stop run up to where it waits
        await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the bot, which still thinks
    h.answer()
    await stopping

    assert [m.text for m in h.slack.posted_messages()] == ["thought about it: think hard"]
    with h.runtime.db.read() as conn:
        unsent = conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.sent_at.is_(None))).all()
    assert unsent == []


async def test_our_own_and_other_bots_messages_are_ignored(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")
    echoes = [
        dm("you said: hi", user=BOT_USER, bot_id=BOT_ID),  # our own reply, echoed back
        dm("beep", user="U0OTHERBOT", bot_id="B0OTHERBOT"),  # another bot in the DM
        dm("beep", user="U0OTHERBOT", subtype="bot_message"),
        dm("edited", subtype="message_changed"),
        dm("gone", subtype="message_deleted"),
        message_event(channel="C1GENERAL", user="U1ANN", text="chatter", channel_type="channel"),
    ]

    responses = [await h.post(event) for event in echoes]
    await h.settle()

    assert [r.status_code for r in responses] == [200] * len(echoes)
    assert h.slack.posted_messages() == []
    assert h.inbox_rows() == 0
    await h.post(dm("a person again"))
    assert await h.posted(1) == ["you said: a person again"]


async def test_a_10000_character_reply_is_posted_as_3_messages_in_order(
    make_harness: Any,
) -> None:
    h = await make_harness(bot="long-bot")
    sentences = " ".join(f"Sentence number {i:04d} of a very long answer." for i in range(250))
    expected = sentences[:10_000]

    await h.post(dm("tell me everything", thread_ts="1700000000.000200"))
    await h.settle()

    posted = h.slack.posted_messages()
    assert len(posted) == 3
    assert all(len(m.text) <= 4000 for m in posted)
    assert " ".join(m.text for m in posted) == expected
    assert [m.thread_ts for m in posted] == ["1700000000.000200"] * 3
    assert [float(m.ts) for m in posted] == sorted(float(m.ts) for m in posted)


async def test_429_in_one_channel_while_another_keeps_flowing(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")
    h.slack.fail_next("chat.postMessage", channel="D1ANN", retry_after=1)

    await h.post(dm("first", user="U1ANN", channel="D1ANN"))
    async with asyncio.timeout(5):
        # The fake records from its own thread; there is no event to await.
        while not h.slack.calls("chat.postMessage"):  # noqa: ASYNC110 (Ann's reply got its 429)
            await asyncio.sleep(0.01)
    await h.post(dm("second", user="U2BOB", channel="D2BOB"))
    await h.settle()

    posted = h.slack.posted_messages()
    assert [(m.channel, m.text) for m in posted] == [
        ("D2BOB", "you said: second"),
        ("D1ANN", "you said: first"),
    ]
    calls = h.slack.calls("chat.postMessage")
    refused, accepted = [c for c in calls if c.params["channel"] == "D1ANN"]
    (bob,) = [c for c in calls if c.params["channel"] == "D2BOB"]
    assert accepted.time - refused.time >= 0.95  # Retry-After: 1 honoured, in D1ANN only
    assert refused.time < bob.time < accepted.time


async def test_mrkdwn_in_a_reply_is_escaped(make_harness: Any) -> None:
    h = await make_harness(bot="mrkdwn-bot")

    await h.post(dm("go"))

    assert await h.posted(1) == [
        "Ping &lt;@U123&gt; &amp; &lt;!channel&gt;, see &lt;http://evil.example|your bank&gt; *now*"
    ]


async def test_database_down_answers_500_and_the_redelivery_is_handled_once(
    make_harness: Any,
) -> None:
    h = await make_harness(bot="echo-bot")
    event = dm("are you up?")

    h.runtime.db.stop()
    refused = await h.post(event)
    h.runtime.db.start()
    stored_meanwhile = h.inbox_rows()
    retried = await h.post(event, retry_num=1)
    again = await h.post(event, retry_num=2)
    await h.settle()

    assert (refused.status_code, retried.status_code, again.status_code) == (500, 200, 200)
    assert stored_meanwhile == 0
    assert [m.text for m in h.slack.posted_messages()] == ["you said: are you up?"]


async def test_a_reply_slack_keeps_refusing_stays_pending_and_is_sent_after_a_restart(
    make_harness: Any,
) -> None:
    first = await make_harness(bot="echo-bot", send_attempts=2)
    first.slack.fail_next("chat.postMessage", channel="D1ANN", retry_after=0, times=2)

    await first.post(dm("hello"))
    await first.settle()
    assert first.slack.posted_messages() == []

    restarted = await make_harness(bot="echo-bot")  # recover(): committed but unsent replies

    assert await restarted.posted(1) == ["you said: hello"]


async def test_secrets_never_reach_a_log_line(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = await make_harness(bot="echo-bot", send_attempts=2)
    h.slack.fail_next("chat.postMessage", retry_after=0)
    h.slack.fail_next("users.info", status=200, error="missing_scope")

    await h.post(dm("hello"))
    await h.posted(1)
    await h.post(dm("forged"), secret="wrong")
    await h.settle()  # nothing may hold a connection when the database goes away
    h.runtime.db.stop()
    await h.post(dm("db down"))
    h.runtime.db.start()
    await h.settle()

    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert TOKEN not in text and SECRET not in text
    assert TOKEN not in repr(h.channel) and SECRET not in repr(h.channel._secrets)
    assert isinstance(h.channel, SlackChannel)
