"""Building Slack channels from ``[[channels]]`` entries, as ``mnemobot run`` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mnemobot.adapters.slack.channel import SlackChannel
from mnemobot.runtime.app.deployment import build_channels
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.pipeline.runtime import Runtime
from tests.fakes.slack_api import FakeSlackAPI

from .conftest import SECRET, TOKEN


def slack_entry(**extra: Any) -> dict[str, Any]:
    entry = {
        "name": "support-slack",
        "kind": "slack",
        "bot": "support-bot",
        "token_env": "SLACK_BOT_TOKEN",
        "signing_secret_env": "SLACK_SIGNING_SECRET",
    }
    entry.update(extra)
    return entry


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)


@pytest.mark.usefixtures("secrets_in_env")
async def test_an_http_channel_from_config_serves_its_webhook_path(
    make_runtime: Callable[..., Runtime], slack: FakeSlackAPI
) -> None:
    api_url = slack.base_url.rstrip("/")  # the slash slack_sdk needs is put back
    runtime = await make_runtime(channels=[slack_entry(api_url=api_url)])

    (channel,) = build_channels(runtime)
    await channel.start()
    await channel.stop()

    assert isinstance(channel, SlackChannel)
    assert (channel.kind, channel.mode, channel.api_url) == ("slack", "http", slack.base_url)
    assert [route.path for route in channel.routes()] == ["/webhooks/slack/support-slack"]  # type: ignore[attr-defined]
    assert runtime.channel_bot("support-slack") == "support-bot"
    assert len(slack.calls("auth.test")) == 1


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (slack_entry(signing_secret_env="SLACK_MISSING_SECRET"), "SLACK_MISSING_SECRET is not set"),
        (slack_entry(signing_secret_env=None), "signing_secret_env"),
        (slack_entry(mode="socket"), "app_token_env"),
        (slack_entry(mode="webhook"), "mode must be 'http' or 'socket'"),
        (slack_entry(max_chars="lots"), "max_chars must be a whole number, not 'lots'"),
        (slack_entry(max_char=2000), r"unknown key `max_char` \(did you mean `max_chars`\?\)"),
        (
            slack_entry(profil_cache_seconds=60),
            r"unknown key `profil_cache_seconds` \(did you mean `profile_cache_seconds`\?\)",
        ),
        (slack_entry(api_urll="http://127.0.0.1:9/"), r"`api_urll` \(did you mean `api_url`\?\)"),
        (slack_entry(api_url="slack.com/api"), "api_url: must be an http"),
        (slack_entry(send_attempts=0), "send_attempts must be 1 or more, not 0"),
    ],
)
@pytest.mark.usefixtures("secrets_in_env")
async def test_config_mistakes_are_one_clear_line(
    make_runtime: Callable[..., Any], entry: dict[str, Any], complaint: str
) -> None:
    runtime = await make_runtime(channels=[entry])

    with pytest.raises(ConfigError, match=complaint) as caught:
        build_channels(runtime)

    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)


async def test_a_token_slack_refuses_stops_start_with_a_clear_error(
    make_runtime: Callable[..., Runtime], slack: FakeSlackAPI, bots_dir: Path
) -> None:
    runtime = await make_runtime(bots_dir=bots_dir)
    channel = SlackChannel(
        runtime,
        name="support-slack",
        bot_token="xoxb-revoked",
        signing_secret=SECRET,
        api_url=slack.base_url,
    )

    with pytest.raises(ConfigError, match="refused the bot token \\(invalid_auth\\)") as caught:
        await channel.start()

    assert "xoxb-revoked" not in str(caught.value)
