"""Webhook mode through the shared ASGI app: 200 only after the inbox commit, once per update."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from mnemobot.adapters.server import build_app, serve
from tests.support import free_port

from .conftest import ECHO_CHANNEL
from .support import ECHO, SECRET, Person, eventually, inbox_rows, pending_replies, turn_finished

ANA = Person(777, "Ana")
WEBHOOK = {**ECHO_CHANNEL, "mode": "webhook", "webhook_secret_env": "TG_WEBHOOK_SECRET"}
PATH = "/webhooks/telegram/echo-telegram"


@asynccontextmanager
async def client(deployment) -> AsyncIterator[httpx.AsyncClient]:
    routes = [r for c in deployment.channels.values() for r in c.routes()]
    app = build_app(routes, bots=deployment.runtime.bots.names())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mnemobot") as http:
        yield http


async def post(
    http: httpx.AsyncClient, update: dict[str, Any] | bytes, secret: str | None = SECRET
) -> int:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return (await http.post(PATH, content=body, headers=headers)).status_code


async def test_a_signed_update_is_stored_then_acknowledged_then_answered(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    update = deployment.tg.push_message(ECHO, 777, 777, "via webhook")
    async with client(deployment) as http:
        assert await post(http, update) == 200
        # the 200 came after the commit: the event is in the inbox already
        assert [r.event_id for r in inbox_rows(deployment.runtime)] == [str(update["update_id"])]
        await turn_finished(deployment.runtime, "echo-telegram", str(update["update_id"]))
    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["echo: via webhook"]
    assert deployment.tg.calls("getUpdates") == []


async def test_a_wrong_or_missing_secret_gets_403_and_nothing_is_stored(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    update = deployment.tg.push_message(ECHO, 777, 777, "forged")
    async with client(deployment) as http:
        assert await post(http, update, secret="wrong") == 403
        assert await post(http, update, secret=SECRET + "x") == 403
        assert await post(http, update, secret=None) == 403
        assert await post(http, update, secret="") == 403
    assert inbox_rows(deployment.runtime) == []
    assert deployment.tg.sent_messages() == []


async def test_malformed_json_gets_400_and_nothing_is_stored(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    async with client(deployment) as http:
        assert await post(http, b"{not json") == 400
        assert await post(http, b"[1, 2]") == 400
        assert await post(http, {"message": {"text": "no update id"}}) == 400
        assert await post(http, {"update_id": 5, "message": "not an object"}) == 400
    assert inbox_rows(deployment.runtime) == []


async def test_a_redelivered_update_is_answered_once(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    update = deployment.tg.push_message(ECHO, 777, 777, "once please")
    async with client(deployment) as http:
        statuses = await asyncio.gather(post(http, update), post(http, update))
        await turn_finished(deployment.runtime, "echo-telegram", str(update["update_id"]))
        assert await post(http, update) == 200
        await asyncio.sleep(0.1)
    assert statuses == [200, 200]
    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["echo: once please"]
    assert len(inbox_rows(deployment.runtime)) == 1


async def test_database_down_gets_500_and_the_retry_is_answered(deploy, echo_bots, outage):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    update = deployment.tg.push_message(ECHO, 777, 777, "are you up?")
    down = outage(deployment.runtime)
    async with client(deployment) as http:
        down.begin()
        assert await post(http, update) == 500
        down.end()
        assert inbox_rows(deployment.runtime) == []
        assert await post(http, update) == 200  # Telegram retries a 5xx
        await turn_finished(deployment.runtime, "echo-telegram", str(update["update_id"]))
    assert [m.text for m in deployment.tg.sent_messages(ECHO)] == ["echo: are you up?"]


async def test_ignored_updates_are_acknowledged_without_storing(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    sticker = {
        "update_id": 42,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 777, "type": "private"},
            "from": {"id": 777, "is_bot": False, "first_name": "Ana"},
            "sticker": {
                "file_id": "x",
                "file_unique_id": "y",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            },
        },
    }
    edited = {"update_id": 43, "edited_message": {**sticker["message"], "text": "edited"}}
    async with client(deployment) as http:
        assert await post(http, sticker) == 200
        assert await post(http, edited) == 200
    assert inbox_rows(deployment.runtime) == []


async def test_telegram_delivers_to_the_served_app_with_the_secret_it_was_given(
    deploy, echo_bots, tg
):
    """End to end: setWebhook at start, the fake POSTs to uvicorn like Telegram does."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    deployment = await deploy({**WEBHOOK, "webhook_url": url}, bots_dir=echo_bots)
    assert tg.webhook(ECHO) == {"url": url, "secret_token": SECRET, "allowed_updates": ["message"]}
    stop = asyncio.Event()
    routes = deployment.channel("echo-telegram").routes()
    server = asyncio.create_task(
        serve(build_app(routes, bots=["echo-bot"]), "127.0.0.1", port, stop)
    )
    try:
        await eventually(lambda: _listening(port), what="uvicorn")
        first = tg.push_message(ECHO, 777, 777, "one")
        second = tg.push_message(ECHO, 888, 888, "two")
        assert await asyncio.to_thread(tg.deliver_webhook, ECHO) == [200, 200]
        for update in (first, second):
            await turn_finished(deployment.runtime, "echo-telegram", str(update["update_id"]))
    finally:
        stop.set()
        await server
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=777)] == ["echo: one"]
    assert [m.text for m in tg.sent_messages(ECHO, chat_id=888)] == ["echo: two"]
    assert pending_replies(deployment.runtime, "echo-telegram") == 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_a_stopped_channel_answers_503_so_telegram_keeps_the_update(deploy, echo_bots):
    deployment = await deploy(WEBHOOK, bots_dir=echo_bots)
    update = deployment.tg.push_message(ECHO, 777, 777, "late")
    async with client(deployment) as http:
        await deployment.channel("echo-telegram").stop()
        assert await post(http, update) == 503
    assert inbox_rows(deployment.runtime) == []
