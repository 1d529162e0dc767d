"""Socket Mode against a fake Socket Mode server on 127.0.0.1.

slack_sdk's aiohttp ``SocketModeClient`` (through slack-bolt's ``AsyncSocketModeHandler``)
asks ``apps.connections.open`` for a WebSocket URL, connects, receives ``events_api``
envelopes and acks each by sending back its ``envelope_id``. The fake below speaks that much
of the protocol; real Slack adds reconnect hints and rate limits this cannot show.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from tests.fakes.slack_api import FakeSlackAPI, message_event

from .conftest import BOT_USER

APP_TOKEN = "xapp-1-socket-token-never-logged"


class FakeSlackWithSocketMode(FakeSlackAPI):
    """The Web API fake plus ``apps.connections.open`` pointing at :class:`FakeSocketServer`."""

    wss_url = ""

    def _api_apps_connections_open(
        self, token: str, bot: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        return {"ok": True, "url": self.wss_url}


class FakeSocketServer:
    """One WebSocket endpoint: says hello, pushes envelopes, records the acks it gets back."""

    def __init__(self) -> None:
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/link"

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {}})
        self.connected.set()
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                self.acks.put_nowait(json.loads(frame.data))
        return ws

    async def push(self, envelope_id: str, payload: dict[str, Any], retry_attempt: int = 0) -> None:
        assert self._ws is not None
        await self._ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "payload": payload,
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
        )

    async def next_ack(self, within: float = 5) -> dict[str, Any]:
        return await asyncio.wait_for(self.acks.get(), within)


@pytest.fixture
def slack() -> Any:  # overrides the conftest fixture: the same bot and people, plus sockets
    from .conftest import BOT_ID, TEAM, TOKEN

    with FakeSlackWithSocketMode(team_id=TEAM) as fake:
        fake.add_bot(TOKEN, name="support", user_id=BOT_USER, bot_id=BOT_ID)
        fake.add_bot(APP_TOKEN, name="app-level")  # lets apps.connections.open authenticate
        fake.add_user("U1ANN", "Ann Example", email="ann@example.com")
        yield fake


@pytest.fixture
async def socket_server(slack: FakeSlackWithSocketMode) -> AsyncIterator[FakeSocketServer]:
    server = FakeSocketServer()
    await server.start()
    slack.wss_url = server.url
    yield server
    await server.stop()


async def test_socket_mode_acks_stored_events_and_answers_them_once(
    make_harness: Any, socket_server: FakeSocketServer, slack: FakeSlackWithSocketMode
) -> None:
    h = await make_harness(bot="echo-bot", mode="socket", signing_secret=None, app_token=APP_TOKEN)
    await asyncio.wait_for(socket_server.connected.wait(), 5)
    event = message_event(channel="D1ANN", user="U1ANN", text="over the socket")

    await socket_server.push("env-1", event)
    ack = await socket_server.next_ack()
    await socket_server.push("env-2", event, retry_attempt=1)  # Slack redelivers: same event_id
    retry_ack = await socket_server.next_ack()
    await h.settle()

    assert (ack["envelope_id"], retry_ack["envelope_id"]) == ("env-1", "env-2")
    assert [m.text for m in slack.posted_messages()] == ["you said: over the socket"]
    assert h.channel.routes() == []
    assert slack.calls("apps.connections.open")[0].headers["authorization"] == f"Bearer {APP_TOKEN}"


async def test_socket_mode_does_not_ack_what_it_could_not_store(
    make_harness: Any, socket_server: FakeSocketServer, slack: FakeSlackWithSocketMode
) -> None:
    h = await make_harness(bot="echo-bot", mode="socket", signing_secret=None, app_token=APP_TOKEN)
    await asyncio.wait_for(socket_server.connected.wait(), 5)
    event = message_event(channel="D1ANN", user="U1ANN", text="while the db was down")

    h.runtime.db.stop()
    await socket_server.push("env-1", event)
    with pytest.raises(TimeoutError):  # no ack: Slack will deliver it again
        await socket_server.next_ack(within=0.5)
    h.runtime.db.start()
    await socket_server.push("env-2", event, retry_attempt=1)

    assert (await socket_server.next_ack())["envelope_id"] == "env-2"
    assert await h.posted(1) == ["you said: while the db was down"]
