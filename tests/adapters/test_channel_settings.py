"""Every channel kind's ``[[channels]]`` entry is typed: a typo or a bad value stops start-up
with one line naming the channel, the key and the key that was meant; nothing is bound."""

from __future__ import annotations

from typing import Any

import pytest

from mnemobot.runtime.app.deployment import build_channels
from mnemobot.runtime.errors import ConfigError

TELEGRAM = {"name": "tg", "kind": "telegram", "bot": "sales-bot", "token_env": "TG_TOKEN"}
SLACK = {
    "name": "sl",
    "kind": "slack",
    "bot": "support-bot",
    "token_env": "SL_TOKEN",
    "signing_secret_env": "SL_SECRET",
}
WEB = {"name": "web", "kind": "web", "bot": "sales-bot", "cookie_secret_env": "WEB_SECRET"}


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN", "123:not-a-real-token")
    monkeypatch.setenv("SL_TOKEN", "xoxb-not-a-real-token")
    monkeypatch.setenv("SL_SECRET", "not-a-real-secret")
    monkeypatch.setenv("WEB_SECRET", "0123456789abcdef0123")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (
            {**WEB, "cookie_secret_evn": "WEB_SECRET"},
            "channel 'web': unknown key `cookie_secret_evn` (did you mean `cookie_secret_env`?)",
        ),
        ({**WEB, "poll": -1}, "channel 'web': poll must be more than 0, not -1"),
        ({**WEB, "keepalive": "often"}, "channel 'web': keepalive: not a duration: 'often'"),
        ({**WEB, "bots": "sales-bot"}, "channel 'web': bots: Input should be a valid list"),
        ({**WEB, "mode": "polling"}, "channel 'web': unknown key `mode`"),
        (
            {**SLACK, "api_urll": "http://127.0.0.1:9/api/"},
            "channel 'sl': unknown key `api_urll` (did you mean `api_url`?)",
        ),
        ({**SLACK, "max_char": 3000}, "unknown key `max_char` (did you mean `max_chars`?)"),
        (
            {**SLACK, "profil_cache_seconds": 60},
            "unknown key `profil_cache_seconds` (did you mean `profile_cache_seconds`?)",
        ),
        ({**TELEGRAM, "base_ulr": "http://x"}, "unknown key `base_ulr` (did you mean `base_url`?)"),
        ({**TELEGRAM, "poll_timeout": -5}, "channel 'tg': poll_timeout must be 0 or more, not -5"),
    ],
)
async def test_a_typo_or_a_bad_value_stops_start_up_in_one_line(
    make_runtime: Any, entry: dict[str, Any], complaint: str
) -> None:
    runtime = await make_runtime(channels=[entry])
    with pytest.raises(ConfigError) as caught:
        build_channels(runtime)
    said = str(caught.value)
    assert complaint in said
    assert "\n" not in said
    for secret in ("not-a-real", "0123456789abcdef"):
        assert secret not in said
    with pytest.raises(KeyError):
        runtime.channel_bot(entry["name"])  # nothing was bound


async def test_durations_are_accepted_in_any_unit(make_runtime: Any) -> None:
    runtime = await make_runtime(
        channels=[
            {**WEB, "poll": "1.5s", "keepalive": "1m", "send_timeout": 2},
            {**SLACK, "profile_cache_seconds": "2h"},
        ]
    )
    web, slack = build_channels(runtime)
    assert (web.poll, web.keepalive, web.send_timeout) == (1.5, 60, 2)  # type: ignore[attr-defined]
    assert slack.profiles._cache.ttl == 7200  # type: ignore[attr-defined]
