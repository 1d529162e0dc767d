"""Fixtures for the web chat: a started WebChannel on a real runtime, and an httpx client.

The API tests go through the starlette app ``mnemobot run`` serves, via
``httpx.ASGITransport``; each runs on SQLite and on PostgreSQL (``make_runtime``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from mnemobot.adapters.server import build_app
from mnemobot.adapters.web.channel import WebChannel
from mnemobot.runtime.pipeline.runtime import Runtime

SECRET = b"a-web-chat-cookie-secret-for-tests"
BASE_URL = "http://mnemobot.test"


@pytest.fixture
async def web(make_runtime: Callable[..., Runtime]) -> AsyncIterator[WebChannel]:
    runtime = await make_runtime()
    channel = WebChannel(
        runtime,
        name="web",
        bots=["sales-bot", "support-bot", "welcome-bot"],
        cookie_secret=SECRET,
        send_timeout=2.0,
    )
    runtime.bind_channel(channel.name, bot="sales-bot")  # as build_channels does
    await channel.delivery.recover()
    await channel.start()
    yield channel
    await channel.stop()
    await channel.delivery.drain()


@pytest.fixture
async def client(web: WebChannel) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(web.routes(), bots=web.runtime.bots.names())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield http


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a Server-Sent Events body (comments and retry dropped)."""
    events = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` (state owned by the code under test, which has no event to await)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
