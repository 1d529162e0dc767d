"""Fixtures for the Slack channel: the fake Web API, a started channel, a signed endpoint.

Everything is real except the far side: slack-bolt and slack_sdk talk HTTP to FakeSlackAPI on
127.0.0.1, and Events API requests go through the starlette app ``mnemobot run`` serves,
via ``httpx.ASGITransport``. Each test runs on SQLite and on PostgreSQL (``make_runtime``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mnemobot.adapters.server import build_app
from mnemobot.adapters.slack.channel import SlackChannel
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.storage.tables import INBOX
from tests.fakes.slack_api import FakeSlackAPI, signed_event_request
from tests.support import write_bot

TOKEN = "xoxb-support-token-never-logged"
SECRET = "signing-secret-never-logged"
BOT_USER, BOT_ID = "U0SUPPORT", "B0SUPPORT"
TEAM = "T0FAKETEAM"
CHANNEL_NAME = "support-slack"

ECHO_BOT = """
async def on_message(ctx):
    await ctx.say("you said: " + ctx.text)
"""
# A bot behind a slow model: it says when it has begun thinking, and answers when the test
# lets it (SlackHarness.thinking / .answer), so no test waits a fixed time for it.
SLOW_BOT = """
import asyncio

THINKING = asyncio.Event()
ANSWER = asyncio.Event()

async def on_message(ctx):
    THINKING.set()
    await ANSWER.wait()
    await ctx.say("thought about it: " + ctx.text)
"""
LONG_BOT = """
async def on_message(ctx):
    text = " ".join(f"Sentence number {i:04d} of a very long answer." for i in range(250))
    await ctx.say(text[:10_000])
"""
MRKDWN_BOT = """
async def on_message(ctx):
    await ctx.say("Ping <@U123> & <!channel>, see <http://evil.example|your bank> *now*")
"""


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk's async client sends through HTTPS_PROXY even for 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(team_id=TEAM) as fake:
        fake.add_bot(TOKEN, name="support", user_id=BOT_USER, bot_id=BOT_ID)
        fake.add_user("U1ANN", "Ann Example", email="ann@example.com", locale="en-GB")
        fake.add_user("U2BOB", "Bob Builder", email="bob@example.com")
        yield fake


@pytest.fixture
def bots_dir(tmp_path: Path) -> Path:
    """The shipped example bots plus small test bots (echo, slow, long, mrkdwn)."""
    root = tmp_path / "bots"
    repo_bots = Path(__file__).resolve().parents[3] / "bots"
    for bot in repo_bots.iterdir():
        if bot.is_dir() and not bot.name.startswith((".", "_")):
            target = root / bot.name
            target.mkdir(parents=True)
            for item in bot.iterdir():
                if item.is_file():
                    (target / item.name).write_bytes(item.read_bytes())
    for name, code in (
        ("echo-bot", ECHO_BOT),
        ("slow-bot", SLOW_BOT),
        ("long-bot", LONG_BOT),
        ("mrkdwn-bot", MRKDWN_BOT),
    ):
        write_bot(root, name, bot_py=code)
    return root


class SlackHarness:
    """One runtime + Slack channel, served by the starlette app, posting to the fake."""

    def __init__(self, runtime: Runtime, channel: SlackChannel, slack: FakeSlackAPI) -> None:
        self.runtime = runtime
        self.channel = channel
        self.slack = slack
        app = build_app(channel.routes(), bots=runtime.bots.names())
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mnemobot.test"
        )

    async def post(
        self,
        payload: dict[str, Any],
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        retry_num: int | None = None,
    ) -> httpx.Response:
        """Deliver one Events API request as Slack would (signed, optionally a retry)."""
        body, headers = signed_event_request(
            secret, payload, timestamp=timestamp, retry_num=retry_num
        )
        return await self.http.post(self.channel.path, content=body, headers=headers)

    async def posted(self, count: int, channel: str | None = None, within: float = 10) -> list[str]:
        """Texts posted so far, once at least ``count`` arrived (the turn runs after the ack)."""
        messages = await asyncio.to_thread(self.slack.wait_for_posted, count, channel, within)
        return [m.text for m in messages]

    async def thinking(self) -> None:
        """Wait until the slow bot has begun its turn."""
        await asyncio.wait_for(self._slow_bot()["THINKING"].wait(), timeout=10)

    def answer(self) -> None:
        """Let the slow bot answer (the turns it holds, and any after them)."""
        self._slow_bot()["ANSWER"].set()

    def _slow_bot(self) -> dict[str, Any]:
        # its module's globals: each runtime loads the bot's module afresh
        return self.runtime.bots.get("slow-bot").on_message.__globals__  # type: ignore[union-attr]

    async def settle(self) -> None:
        """Wait for every turn in flight, so "nothing more was posted" means something."""
        await self.channel.delivery.drain(grace=10)

    def inbox_rows(self) -> int:
        with self.runtime.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(INBOX)).scalar_one())


@pytest.fixture
async def make_harness(
    make_runtime: Callable[..., Runtime], slack: FakeSlackAPI, bots_dir: Path
) -> AsyncIterator[Callable[..., Any]]:
    """``await make_harness(bot="support-bot", **channel_kwargs)``: started and bound.

    ``api=`` points it at another fake Slack than the ``slack`` fixture.
    """
    made: list[SlackHarness] = []

    async def factory(
        bot: str = "support-bot", api: FakeSlackAPI | None = None, **kwargs: Any
    ) -> SlackHarness:
        api = api or slack
        runtime = await make_runtime(bots_dir=bots_dir)
        options: dict[str, Any] = {
            "name": CHANNEL_NAME,
            "bot_token": TOKEN,
            "signing_secret": SECRET,
            "api_url": api.base_url,
        }
        options.update(kwargs)
        channel = SlackChannel(runtime, **options)
        runtime.bind_channel(channel.name, bot=bot)
        await channel.delivery.recover()
        await channel.start()
        harness = SlackHarness(runtime, channel, api)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.answer()  # a test that failed while the slow bot thought must not hold the stop
        await harness.channel.stop()
        await harness.settle()
        await harness.http.aclose()
