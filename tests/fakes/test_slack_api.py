"""The real slack_sdk and slack-bolt against FakeSlackAPI, over HTTP on 127.0.0.1.

These prove the fake answers the way the SDK expects and that the Events API builders produce
requests Slack's own verifier and Bolt accept, so channel tests built on them mean something.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from .slack_api import (
    DEFAULT_TEAM,
    FakeSlackAPI,
    app_mention_event,
    message_event,
    signed_event_request,
)

TOKEN = "xoxb-support"
SECRET = "signing-secret"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The async client sends through HTTPS_PROXY even for 127.0.0.1 (see LIBRARIES.md)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        fake.add_bot(TOKEN, name="support", user_id="U0SUPPORT", bot_id="B0SUPPORT")
        fake.add_user("U1ANN", "Ann Example", email="ann@example.com", locale="de-DE")
        yield fake


def test_auth_test_identifies_the_token(slack: FakeSlackAPI) -> None:
    response = WebClient(token=TOKEN, base_url=slack.base_url).auth_test()

    assert (response["team_id"], response["user_id"], response["bot_id"]) == (
        DEFAULT_TEAM,
        "U0SUPPORT",
        "B0SUPPORT",
    )
    (call,) = slack.calls("auth.test")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"


def test_auth_test_accepts_an_empty_json_body(slack: FakeSlackAPI) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for body in (b"", b"{}"):
        response = httpx.post(f"{slack.base_url}auth.test", content=body, headers=headers)
        assert response.json()["user_id"] == "U0SUPPORT"


def test_bad_or_missing_tokens_are_refused(slack: FakeSlackAPI) -> None:
    with pytest.raises(SlackApiError) as bad:
        WebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=slack.base_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    assert missing.value.response["error"] == "not_authed"


async def test_post_message_is_recorded_with_increasing_ts(slack: FakeSlackAPI) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)

    first = await client.chat_postMessage(channel="D1", text="hello *Ann*", mrkdwn=True)
    second = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])

    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["bot_id"] == "B0SUPPORT"
    assert [(m.channel, m.text, m.thread_ts, m.mrkdwn) for m in slack.posted_messages()] == [
        ("D1", "hello *Ann*", None, True),
        ("C1", "in thread", first["ts"], None),
    ]
    assert [m.ts for m in slack.posted_messages("C1")] == [second["ts"]]
    assert slack.calls("chat.postMessage")[0].params["text"] == "hello *Ann*"


def test_post_message_refuses_empty_and_oversized_texts(slack: FakeSlackAPI) -> None:
    with pytest.raises(SlackApiError) as caught:
        WebClient(token=TOKEN, base_url=slack.base_url).chat_postMessage(
            channel="D1", text="x" * 40_001
        )
    empty = httpx.post(  # slack_sdk itself warns about an empty text, so send it raw
        f"{slack.base_url}chat.postMessage",
        json={"channel": "D1", "text": ""},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert caught.value.response["error"] == "msg_too_long"
    assert empty.json() == {"ok": False, "error": "no_text"}
    assert slack.posted_messages() == []


async def test_users_info_returns_profile_with_email_only_with_the_scope(
    slack: FakeSlackAPI,
) -> None:
    slack.add_bot("xoxb-no-email", scopes=("chat:write", "users:read"))

    user = (await AsyncWebClient(token=TOKEN, base_url=slack.base_url).users_info(user="U1ANN"))[
        "user"
    ]
    hidden = WebClient(token="xoxb-no-email", base_url=slack.base_url).users_info(user="U1ANN")

    assert (user["real_name"], user["profile"]["email"], user["locale"]) == (
        "Ann Example",
        "ann@example.com",
        "de-DE",
    )
    assert user["team_id"] == DEFAULT_TEAM
    assert "email" not in hidden["user"]["profile"]
    with pytest.raises(SlackApiError) as caught:
        WebClient(token=TOKEN, base_url=slack.base_url).users_info(user="U404")
    assert caught.value.response["error"] == "user_not_found"


def test_conversations_open_gives_a_stable_dm(slack: FakeSlackAPI) -> None:
    client = WebClient(token=TOKEN, base_url=slack.base_url)
    first = client.conversations_open(users="U1ANN")["channel"]["id"]
    assert first.startswith("D")
    assert client.conversations_open(users=["U1ANN"])["channel"]["id"] == first


async def test_429_on_one_channel_while_another_flows(slack: FakeSlackAPI) -> None:
    slack.fail_next("chat.postMessage", channel="C1", retry_after=3)
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)

    await client.chat_postMessage(channel="C2", text="flows")
    assert [m.text for m in await asyncio.to_thread(slack.wait_for_posted, 1, "C2")] == ["flows"]
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="too fast")
    await client.chat_postMessage(channel="C1", text="after waiting")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"
    assert caught.value.response["error"] == "ratelimited"
    assert [m.text for m in slack.posted_messages()] == ["flows", "after waiting"]


def test_429_reaches_the_sync_client_too(slack: FakeSlackAPI) -> None:
    slack.fail_next("chat.postMessage", retry_after=2, times=2)
    client = WebClient(token=TOKEN, base_url=slack.base_url)
    for channel in ("C1", "C2"):
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel=channel, text="x")
        headers = {k.lower(): v for k, v in caught.value.response.headers.items()}
        assert (caught.value.response.status_code, headers["retry-after"]) == (429, "2")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_signed_request_passes_slacks_verifier_and_forgeries_do_not() -> None:
    payload = message_event(channel="D1", user="U1ANN", text="hi")
    body, headers = signed_event_request(SECRET, payload)
    ts, signature = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]

    assert SignatureVerifier(SECRET).is_valid(body=body, timestamp=ts, signature=signature)
    assert not SignatureVerifier("other").is_valid(body=body, timestamp=ts, signature=signature)

    old_body, old = signed_event_request(SECRET, payload, timestamp=int(time.time()) - 301)
    assert not SignatureVerifier(SECRET).is_valid(
        body=old_body,
        timestamp=old["X-Slack-Request-Timestamp"],
        signature=old["X-Slack-Signature"],
    )
    _, retried = signed_event_request(SECRET, payload, retry_num=1)
    assert (retried["X-Slack-Retry-Num"], retried["X-Slack-Retry-Reason"]) == ("1", "http_timeout")


def test_event_builders_look_like_slack() -> None:
    dm = message_event(channel="D1", user="U1ANN", text="hi", thread_ts="1.000001")
    echo = message_event(channel="D1", user="U0SUPPORT", text="hello", bot_id="B0SUPPORT")
    mention = app_mention_event(channel="C1", user="U1ANN", text="help", bot_user_id="U0SUPPORT")

    assert dm["type"] == "event_callback" and dm["team_id"] == DEFAULT_TEAM
    assert dm["event"]["channel_type"] == "im" and dm["event"]["thread_ts"] == "1.000001"
    assert "bot_id" not in dm["event"] and "client_msg_id" in dm["event"]
    assert echo["event"]["bot_id"] == "B0SUPPORT" and "client_msg_id" not in echo["event"]
    assert mention["event"]["type"] == "app_mention"
    assert mention["event"]["text"] == "<@U0SUPPORT> help"
    assert mention["authorizations"][0]["user_id"] == "U0SUPPORT"
    assert len({dm["event_id"], echo["event_id"], mention["event_id"]}) == 3
    assert float(mention["event"]["ts"]) > float(dm["event"]["ts"])


async def test_bolt_accepts_built_events_and_replies_through_the_fake(slack: FakeSlackAPI) -> None:
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=slack.base_url),
        process_before_response=True,
    )
    seen: list[str] = []

    @app.event("message")
    async def on_dm(event: dict[str, Any], say: Any) -> None:
        seen.append(event["text"])
        await say(text=f"you said {event['text']}", thread_ts=event.get("thread_ts"))

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="at your service", thread_ts=event["ts"])

    dm = message_event(channel="D1", user="U1ANN", text="hi", thread_ts="1.000001")
    mention = app_mention_event(channel="C1", user="U1ANN", text="help", bot_user_id="U0SUPPORT")
    for payload in (dm, mention):
        body, headers = signed_event_request(SECRET, payload)
        response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        assert response.status == 200

    forged_body, forged = signed_event_request("not-the-secret", dm)
    refused = await app.async_dispatch(AsyncBoltRequest(body=forged_body.decode(), headers=forged))

    assert refused.status == 401
    assert seen == ["hi"]
    assert [(m.channel, m.text, m.thread_ts) for m in slack.posted_messages()] == [
        ("D1", "you said hi", "1.000001"),
        ("C1", "at your service", mention["event"]["ts"]),
    ]
    assert len(slack.calls("auth.test")) >= 1  # Bolt's lazy check hit the fake, not Slack
