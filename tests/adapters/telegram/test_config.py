"""A Telegram channel is configured in ``[[channels]]``; every mistake is one clear line."""

from __future__ import annotations

import asyncio

import pytest

from mnemobot.runtime.app.deployment import build_channels, run_deployment
from mnemobot.runtime.errors import ConfigError

from .conftest import SALES_CHANNEL
from .support import SALES, Person

ANA = Person(777, "Ana")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token_env": "TG_NOT_SET_TOKEN"}, "environment variable TG_NOT_SET_TOKEN is not set"),
        ({"mode": "webhook"}, "set webhook_secret_env"),
        ({"mode": "push"}, "mode must be 'polling' or 'webhook', not 'push'"),
        ({"webhok_url": "http://x"}, "unknown key `webhok_url` (did you mean `webhook_url`?)"),
        ({"pacing": {"chat_rate": 0}}, "pacing rates are messages per second"),
        ({"pacing": {"chat_rat": 5}}, "unknown key `pacing.chat_rat` (did you mean `pacing."),
        ({"poll_timeout": "soon"}, "poll_timeout: not a duration: 'soon'"),
        ({"retry_delay": -1}, "retry_delay must be 0 or more, not -1"),
    ],
)
async def test_mistakes_are_named(make_runtime, tg, change, message):
    runtime = await make_runtime(channels=[{**SALES_CHANNEL, "base_url": tg.base_url, **change}])
    with pytest.raises(ConfigError, match="channel 'sales-telegram'") as caught:
        build_channels(runtime)
    assert message in str(caught.value)


async def test_a_webhook_secret_telegram_would_refuse_is_refused_up_front(
    make_runtime, tg, monkeypatch
):
    monkeypatch.setenv("TG_WEBHOOK_SECRET", "has spaces!")
    webhook = {**SALES_CHANNEL, "mode": "webhook", "webhook_secret_env": "TG_WEBHOOK_SECRET"}
    runtime = await make_runtime(channels=[webhook])
    with pytest.raises(ConfigError, match="1-256 characters"):
        build_channels(runtime)


async def test_a_token_telegram_refuses_fails_the_start(deploy, tg, monkeypatch):
    monkeypatch.setenv("TG_SALES_TOKEN", "999:revoked")
    deployment = await deploy(SALES_CHANNEL, start=False)
    with pytest.raises(ConfigError, match="Telegram refused the token"):
        await deployment.channel("sales-telegram").start()


async def test_mnemobot_run_serves_a_polling_channel_and_stops_cleanly(deploy, tg):
    deployment = await deploy(SALES_CHANNEL, start=False, server={"port": 0})
    channels = list(deployment.channels.values())
    stop = asyncio.Event()
    running = asyncio.create_task(run_deployment(deployment.runtime, channels, stop))
    sales = deployment.line("sales-telegram")

    assert await sales.says(ANA, "hi") == ["Hi! I'm the sales bot. What's your name?"]
    stop.set()
    await asyncio.wait_for(running, 5)
    assert tg.pending_updates(SALES) == []
