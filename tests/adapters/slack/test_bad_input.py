"""Signed Slack requests that Bolt cannot read: a clear 4xx, never a 500 (Slack retries a 500),
and nothing stored.

Each body is signed with the real signing secret, so it passes as Slack's own; what is wrong
is its content: nested too deep, not JSON, not UTF-8, or far larger than any event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from mnemobot.runtime.storage.tables import IDENTITIES, USERS
from tests.fakes.slack_api import message_event

from .conftest import BOT_USER, SECRET


def signed(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    """Headers signing ``body`` as Slack does (v0 HMAC-SHA256 over the raw bytes, whatever
    they hold; slack_sdk's own helper decodes them as UTF-8 first)."""
    ts = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={mac.hexdigest()}",
    }


def people(h: Any) -> int:
    with h.runtime.db.read() as conn:
        users = conn.execute(select(func.count()).select_from(USERS)).scalar_one()
        identities = conn.execute(select(func.count()).select_from(IDENTITIES)).scalar_one()
    return int(users) + int(identities)


def event_with_text(text: str) -> bytes:
    return json.dumps(message_event(channel="D1ANN", user="U1ANN", text=text)).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        pytest.param(
            b"[" * 4000 + b"]" * 4000, "application/json", "nested deeper", id="deep-array"
        ),
        pytest.param(
            b'{"event": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001,
            "application/json",
            "nested deeper",
            id="deep-object",
        ),
        pytest.param(b'{"event": {"type": "message"', "application/json", "not JSON", id="cut"),
        pytest.param(b"[1, 2, 3]", "application/json", "not a JSON object", id="array"),
        pytest.param(
            event_with_text("caf\u00e9").replace(b"caf\\u00e9", b"caf\xe9"),
            "application/json",
            "not UTF-8",
            id="latin-1",
        ),
        pytest.param(
            b"payload=" + b"%5B" * 4000, "application/x-www-form-urlencoded", "nested", id="form"
        ),
    ],
)
async def test_a_signed_body_bolt_cannot_read_is_refused_with_400_and_not_stored(
    make_harness: Any, body: bytes, content_type: str, says: str
) -> None:
    h = await make_harness(bot="echo-bot")

    response = await h.http.post(h.channel.path, content=body, headers=signed(body, content_type))

    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert says in response.json()["error"]
    await h.settle()
    assert h.inbox_rows() == 0
    assert people(h) == 0
    assert h.slack.posted_messages() == []


async def test_a_signed_event_of_3_mb_is_refused_with_413_and_not_stored(make_harness: Any) -> None:
    h = await make_harness(bot="echo-bot")
    body = event_with_text("x" * 3_000_000)

    response = await h.http.post(h.channel.path, content=body, headers=signed(body))

    assert response.status_code == 413
    await h.settle()
    assert h.inbox_rows() == 0
    assert people(h) == 0


async def test_a_readable_event_still_passes_after_the_checks(make_harness: Any) -> None:
    """The checks read the body first; Bolt must still get it whole, and verify it."""
    h = await make_harness(bot="echo-bot")
    body = json.dumps(
        message_event(channel="D1ANN", user="U1ANN", text="caf\u00e9 [ok]", bot_user_id=BOT_USER),
        ensure_ascii=False,
    ).encode()

    assert (
        await h.http.post(h.channel.path, content=body, headers=signed(body))
    ).status_code == 200
    assert await h.posted(1) == ["you said: caf\u00e9 [ok]"]
    assert h.inbox_rows() == 1

    forged = {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}
    assert (await h.http.post(h.channel.path, content=body, headers=forged)).status_code == 401
