"""An admin API client against a real runtime, and people created by chatting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from mnemobot.adapters.admin.api import admin_routes
from mnemobot.adapters.admin.auth import ADMIN_TOKEN_ENV
from mnemobot.adapters.server import build_app
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.support import Chat

TOKEN = "test-token-0123456789abcdef"
ACTOR = "alice"


@pytest.fixture
async def runtime(make_runtime: Callable[..., Awaitable[Runtime]]) -> Runtime:
    return await make_runtime()


def admin_app(runtime: Runtime, env: dict[str, str] | None = None) -> object:
    environ = {ADMIN_TOKEN_ENV: f"{ACTOR}:{TOKEN}"} if env is None else env
    return build_app(admin_routes(runtime, environ=environ), bots=runtime.bots.names())


def http(app: object, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://admin.test",
        headers=headers,
    )


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with http(admin_app(runtime)) as client:
        yield client


@pytest.fixture
def meet(runtime: Runtime, clock: ManualClock) -> Callable[..., Awaitable[str]]:
    """Chat with sales-bot until it knows the person's name and language; returns the user id."""

    async def introduce(user: str, name: str, language: str = "English") -> str:
        sales = Chat(runtime, bot="sales-bot", user=user)
        await sales.say("hi")
        clock.advance(1)
        await sales.say(name)
        clock.advance(1)
        replies = await sales.say(language)
        clock.advance(1)
        assert replies[0].startswith("sales-bot: ") and f", {name} (" in replies[0], replies
        return await sales.user_id()

    return introduce
