"""Conversations over the Slack channel, read like transcripts: what Ann sends, what is posted.

The support bot (bots/support-bot) greets someone it does not know by asking their name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mnemobot.runtime.storage.tables import IDENTITIES, USERS
from tests.fakes.slack_api import FakeSlackAPI, app_mention_event, message_event

from .conftest import BOT_USER, TEAM, TOKEN

ASKS_NAME = (
    "Hello! I'm the support bot. I don't know you yet: what's your name? "
    "(Or tell sales-bot, and I'll remember.)"
)


def dm(text: str, user: str = "U1ANN", channel: str = "D1ANN", **extra: Any) -> dict[str, Any]:
    return message_event(channel=channel, user=user, text=text, bot_user_id=BOT_USER, **extra)


async def test_a_dm_conversation_with_the_support_bot(make_harness: Any) -> None:
    h = await make_harness(bot="support-bot")

    assert (await h.post(dm("hi"))).status_code == 200
    assert await h.posted(1) == [ASKS_NAME]
    assert (await h.post(dm("ann"))).status_code == 200
    assert (await h.posted(2))[1] == "Hello, Ann! I'm the support bot. How can I help?"
    assert (await h.post(dm("my printer is on fire"))).status_code == 200
    assert (await h.posted(3))[2] == 'Noted, Ann: ticket #1 — "my printer is on fire".'

    posted = h.slack.posted_messages()
    assert {(m.channel, m.thread_ts, m.token) for m in posted} == {
        ("D1ANN", None, h.channel._secrets.bot_token)
    }
    # The person is team:user, named and e-mailed from users.info, looked up once (cached).
    with h.runtime.db.read() as conn:
        identity = conn.execute(select(IDENTITIES)).one()
        user = conn.execute(select(USERS)).one()
    assert (identity.channel_kind, identity.external_id) == ("slack", f"{TEAM}:U1ANN")
    assert (identity.display_name, user.email, user.language) == (
        "Ann Example",
        "ann@example.com",
        "en-GB",
    )
    assert len(h.slack.calls("users.info")) == 1
    assert len(h.slack.calls("auth.test")) == 1  # in start(), never per event


async def test_every_call_to_slack_goes_over_one_kept_alive_connection(make_harness: Any) -> None:
    with FakeSlackAPI(team_id=TEAM, keep_alive=True) as slack:
        slack.add_bot(TOKEN, name="support", user_id=BOT_USER, bot_id="B0SUPPORT")
        slack.add_user("U1ANN", "Ann Example", email="ann@example.com")
        h = await make_harness(bot="echo-bot", api=slack)
        for n, text in enumerate(("one", "two", "three"), start=1):
            assert (await h.post(dm(text))).status_code == 200
            await h.posted(n)
        await h.channel.stop()  # closes the connection, so the fake's server can stop

    assert [m.text for m in slack.posted_messages()] == [
        "you said: one",
        "you said: two",
        "you said: three",
    ]
    calls = [r for r in slack.requests() if r.token == TOKEN]
    assert {r.api_method for r in calls} == {"auth.test", "users.info", "chat.postMessage"}
    assert len({r.client_port for r in calls}) == 1


async def test_without_the_email_scope_no_email_is_kept(
    make_harness: Any, slack: FakeSlackAPI
) -> None:
    slack.add_bot(
        "xoxb-no-email", user_id="U0NOMAIL", bot_id="B0NOMAIL", scopes=("chat:write", "users:read")
    )
    h = await make_harness(bot="echo-bot", bot_token="xoxb-no-email")

    await h.post(dm("hello"))
    assert await h.posted(1) == ["you said: hello"]

    with h.runtime.db.read() as conn:
        user = conn.execute(select(USERS)).one()
    assert (user.display_name, user.email) == ("Ann Example", None)


async def test_an_app_mention_is_answered_in_a_thread_on_the_mention(make_harness: Any) -> None:
    h = await make_harness(bot="support-bot")
    mention = app_mention_event(
        channel="C1GENERAL", user="U1ANN", text="hi there", bot_user_id=BOT_USER
    )

    assert (await h.post(mention)).status_code == 200
    assert await h.posted(1, "C1GENERAL") == [ASKS_NAME]
    root = mention["event"]["ts"]
    # Answering the question with another mention in that thread continues the session.
    follow_up = app_mention_event(
        channel="C1GENERAL", user="U1ANN", text="Ann", thread_ts=root, bot_user_id=BOT_USER
    )
    await h.post(follow_up)
    assert (await h.posted(2, "C1GENERAL"))[1] == "Hello, Ann! I'm the support bot. How can I help?"

    assert [m.thread_ts for m in h.slack.posted_messages("C1GENERAL")] == [root, root]


async def test_two_threads_keep_separate_sessions(make_harness: Any) -> None:
    h = await make_harness(bot="support-bot")
    first = app_mention_event(channel="C1GENERAL", user="U1ANN", text="hi", bot_user_id=BOT_USER)
    second = app_mention_event(channel="C1GENERAL", user="U1ANN", text="hi", bot_user_id=BOT_USER)

    await h.post(first)
    await h.posted(1)
    await h.post(second)
    # One shared session would have taken this "hi" as her name ("Hello, Hi! ...").
    assert await h.posted(2) == [ASKS_NAME, ASKS_NAME]
    await h.post(
        app_mention_event(
            channel="C1GENERAL",
            user="U1ANN",
            text="ann",
            thread_ts=first["event"]["ts"],
            bot_user_id=BOT_USER,
        )
    )
    assert (await h.posted(3))[2] == "Hello, Ann! I'm the support bot. How can I help?"

    threads = [m.thread_ts for m in h.slack.posted_messages()]
    assert threads == [first["event"]["ts"], second["event"]["ts"], first["event"]["ts"]]


async def test_a_dm_thread_is_its_own_conversation_and_is_answered_in_it(
    make_harness: Any,
) -> None:
    h = await make_harness(bot="support-bot")

    await h.post(dm("hi"))
    await h.posted(1)
    await h.post(dm("hi", thread_ts="1700000000.000100"))

    assert await h.posted(2) == [ASKS_NAME, ASKS_NAME]
    assert [m.thread_ts for m in h.slack.posted_messages()] == [None, "1700000000.000100"]


async def test_link_arrives_as_a_slash_command_and_is_answered_in_the_dm(
    make_harness: Any,
) -> None:
    import time
    from urllib.parse import urlencode

    from slack_sdk.signature import SignatureVerifier

    h = await make_harness(bot="support-bot")
    body = urlencode(
        {
            "command": "/link",
            "text": "",
            "team_id": TEAM,
            "user_id": "U1ANN",
            "channel_id": "D1ANN",
            "trigger_id": "1234.5678.abcd",
            "response_url": "https://hooks.slack.invalid/commands/1",
        }
    ).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(
            h.channel._secrets.signing_secret
        ).generate_signature(timestamp=ts, body=body),
    }

    response = await h.http.post(h.channel.path, content=body, headers=headers)

    assert response.status_code == 200
    (reply,) = await h.posted(1, "D1ANN")
    assert reply.startswith("Your link code is ")


async def test_mentions_and_links_in_text_reach_the_bot_as_plain_text(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")

    await h.post(
        app_mention_event(
            channel="C1GENERAL",
            user="U1ANN",
            text=f"<@{BOT_USER}> is 1 &lt; 2 &amp;&amp; see <https://example.com|the docs>",
            bot_user_id=BOT_USER,
        )
    )

    # The bot saw "is 1 < 2 && see the docs"; the reply is escaped again on the way out.
    assert await h.posted(1) == ["you said: is 1 &lt; 2 &amp;&amp; see the docs"]
