"""Fixtures: the fake Bot API with three bot accounts, and deployments built from settings."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mnemobot.adapters.telegram.channel import TelegramChannel
from mnemobot.runtime.app.deployment import build_channels
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.support import write_bot

from .support import ECHO, SALES, SECRET, SUPPORT, Deployment, Outage

LONG_REPLY = " ".join(f"Sentence {i:04d} of a long answer." for i in range(400))[:10_000]

ECHO_BOT = f'''
"""Answers what it was told, so a test sees exactly what the channel passed on."""

LONG = {LONG_REPLY!r}


async def on_message(ctx):
    if ctx.text == "long":
        await ctx.say(LONG)
    elif ctx.text.startswith("twice "):
        await ctx.say("first: " + ctx.text[6:])
        await ctx.say("second: " + ctx.text[6:])
    else:
        await ctx.say("echo: " + ctx.text)
'''


@pytest.fixture(autouse=True)
def _telegram_env(monkeypatch: pytest.MonkeyPatch, _offline: None) -> None:
    """Tokens as a deployment gives them; no proxy (httpx would use it for 127.0.0.1)."""
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    monkeypatch.setenv("TG_SALES_TOKEN", SALES)
    monkeypatch.setenv("TG_SUPPORT_TOKEN", SUPPORT)
    monkeypatch.setenv("TG_ECHO_TOKEN", ECHO)
    monkeypatch.setenv("TG_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def tg() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        fake.add_bot(SALES, "sales_bot", first_name="Sales")
        fake.add_bot(SUPPORT, "support_bot", first_name="Support")
        fake.add_bot(ECHO, "echo_bot", first_name="Echo")
        yield fake


@pytest.fixture
def echo_bots(tmp_path: Path) -> Path:
    root = tmp_path / "bots"
    write_bot(root, "echo-bot", bot_py=textwrap.dedent(ECHO_BOT))
    return root


def channel(name: str, bot: str, token_env: str, **extra: Any) -> dict[str, Any]:
    """A ``[[channels]]`` entry; tests keep long polls and back-offs short."""
    return {
        "name": name,
        "kind": "telegram",
        "bot": bot,
        "token_env": token_env,
        "poll_timeout": 0.5,
        "retry_delay": 0.05,
        **extra,
    }


SALES_CHANNEL = channel("sales-telegram", "sales-bot", "TG_SALES_TOKEN")
SUPPORT_CHANNEL = channel("support-telegram", "support-bot", "TG_SUPPORT_TOKEN")
ECHO_CHANNEL = channel("echo-telegram", "echo-bot", "TG_ECHO_TOKEN")


@pytest.fixture
async def deploy(
    make_runtime: Callable[..., Runtime], tg: FakeTelegramAPI
) -> AsyncIterator[Callable[..., Awaitable[Deployment]]]:
    """``await deploy(SALES_CHANNEL, ..., bots_dir=None, start=True, **settings_sections)``.

    Channels are built by ``build_channels`` from the settings, as ``mnemobot run`` does,
    and stopped at the end of the test.
    """
    made: list[Deployment] = []

    async def factory(
        *channels: dict[str, Any],
        bots_dir: Path | None = None,
        start: bool = True,
        **sections: Any,
    ) -> Deployment:
        entries = [{"base_url": tg.base_url, **c} for c in channels]
        runtime = await make_runtime(bots_dir=bots_dir, channels=entries, **sections)
        built = build_channels(runtime)
        deployment = Deployment(
            tg, runtime, {c.name: c for c in built if isinstance(c, TelegramChannel)}
        )
        made.append(deployment)
        if start:
            await deployment.start()
        return deployment

    yield factory
    for deployment in made:
        await deployment.stop()


@pytest.fixture
def outage() -> Iterator[Callable[[Runtime], Outage]]:
    """``outage(runtime).begin()`` takes its database away; always given back at the end."""
    made: list[Outage] = []

    def factory(runtime: Runtime) -> Outage:
        made.append(Outage(runtime))
        return made[-1]

    yield factory
    for each in made:
        each.end()
