"""One person on Telegram and on Slack, several bots, one memory — and another person apart.

Both platforms run through their real SDKs (python-telegram-bot polling, slack-bolt's signed
Events API) against fakes of the far side on 127.0.0.1, in one deployment built the way
``mnemobot run`` builds it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mnemobot.adapters.server import build_app
from mnemobot.runtime.app.deployment import build_channels
from tests.adapters.telegram.support import Line, Person
from tests.conftest import REPO
from tests.fakes.slack_api import FakeSlackAPI, message_event, signed_event_request
from tests.fakes.telegram_api import FakeTelegramAPI

TG_TOKEN = "111111:AAA-sales"
SLACK_TOKEN = "xoxb-support"
SLACK_SECRET = "slack-signing-secret"
TEAM = "T0TEAM"


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    monkeypatch.setenv("TG_SALES_TOKEN", TG_TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    with FakeTelegramAPI() as tg, FakeSlackAPI(team_id=TEAM) as slack:
        tg.add_bot(TG_TOKEN, "sales_bot", first_name="Sales")
        slack.add_bot(SLACK_TOKEN, name="support", user_id="U0BOT", bot_id="B0BOT", team_id=TEAM)
        slack.add_user("U1ANA", "Ana Souza", team_id=TEAM)
        slack.add_user("U2EVE", "Eve Example", team_id=TEAM)
        yield tg, slack


async def test_told_on_telegram_greeted_on_slack_after_linking(make_runtime, fakes):
    tg, slack = fakes
    runtime = await make_runtime(
        bots_dir=REPO / "bots",
        channels=[
            {
                "name": "sales-telegram",
                "kind": "telegram",
                "bot": "sales-bot",
                "token_env": "TG_SALES_TOKEN",
                "base_url": tg.base_url,
                "poll_timeout": 0.5,
            },
            {
                "name": "support-slack",
                "kind": "slack",
                "bot": "support-bot",
                "token_env": "SLACK_BOT_TOKEN",
                "signing_secret_env": "SLACK_SIGNING_SECRET",
                "api_url": slack.base_url,
            },
        ],
    )
    channels = {c.name: c for c in build_channels(runtime)}
    for channel in channels.values():
        await channel.start()
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(
            app=build_app(
                [r for c in channels.values() for r in c.routes()], bots=runtime.bots.names()
            )
        ),
        base_url="http://mnemobot.test",
    )
    telegram = Line(tg, runtime, channels["sales-telegram"], TG_TOKEN)  # type: ignore[arg-type]
    ana = Person(5550001, "Ana", "Souza", language_code="pt-br")

    async def on_slack(user: str, dm: str, text: str) -> list[str]:
        before = len(slack.posted_messages(dm))
        body, headers = signed_event_request(
            SLACK_SECRET, message_event(channel=dm, user=user, text=text, team_id=TEAM)
        )
        response = await http.post("/webhooks/slack/support-slack", content=body, headers=headers)
        assert response.status_code == 200
        await asyncio.to_thread(slack.wait_for_posted, before + 1, dm, 10)
        await channels["support-slack"].delivery.drain(grace=10)
        return [m.text for m in slack.posted_messages(dm)[before:]]

    try:
        # On Telegram, Ana tells the sales bot her name and language.
        assert await telegram.says(ana, "/start") == ["Hi! I'm the sales bot. What's your name?"]
        await telegram.says(ana, "Ana")
        assert (await telegram.says(ana, "Português"))[0].startswith("Certo, Ana (pt-BR).")
        [code_line] = await telegram.says(ana, "/link")
        code = code_line.split("code is ")[1][:6]

        # On Slack, before linking, the support bot does not know her.
        first: list[str] = await on_slack("U1ANA", "D1ANA", "hello")
        assert first[0].startswith("Hello! I'm the support bot. I don't know you yet")
        assert await on_slack("U1ANA", "D1ANA", f"/link {code}") == [
            "Linked! Both accounts are now one person to every bot here."
        ]
        # A new Slack session: greeted by name, in the language she gave on Telegram.
        await on_slack("U1ANA", "D1ANA", "/end")
        assert await on_slack("U1ANA", "D1ANA", "oi") == [
            "Olá, Ana! Sou o bot de suporte. Como posso ajudar?"
        ]

        # Eve, on the same Slack bot, sees none of it.
        eve: list[str] = await on_slack("U2EVE", "D2EVE", "hello")
        assert "Ana" not in eve[0] and eve[0].startswith("Hello! I'm the support bot.")
        assert runtime.identity.find("slack:T0TEAM:U1ANA") == runtime.identity.find(
            f"telegram:{ana.user_id}"
        )
        assert runtime.identity.find("slack:T0TEAM:U2EVE") != runtime.identity.find(
            f"telegram:{ana.user_id}"
        )
    finally:
        await http.aclose()
        for channel in channels.values():
            await channel.stop()
