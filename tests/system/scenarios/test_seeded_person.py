"""Seed 004's CRM case (issue 16): a person is created and given facts and memory over the
command line before they ever write; their first Telegram message is theirs, and the bot's
reply uses what was seeded. A person seeded by e-mail alone gets their Telegram account tied
on afterwards (`mnemobot people link`), the person that account had made merged in.

The real console script in a subprocess, the real python-telegram-bot against the fake Bot
API on 127.0.0.1, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mnemobot.runtime.app.deployment import build_channels
from mnemobot.runtime.storage.tables import IDENTITIES, USERS
from tests.adapters.telegram.support import Line, Person
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.runtime.cli.test_cli import Cli, _base_env, ok
from tests.support import write_bot

TOKEN = "444444:DDD-crm"

CRM_BOT = """
async def on_message(ctx):
    company = await ctx.user.facts.get("company")
    if company is None:
        await ctx.say("Hello! I don't know you yet.")
        return
    plan = await ctx.user.memory.get("plan")
    await ctx.say(f"Welcome, {ctx.user.display_name}! How is {company} doing on {plan}?")
"""


@pytest.fixture
def tg(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    monkeypatch.setenv("TG_CRM_TOKEN", TOKEN)
    with FakeTelegramAPI() as fake:
        fake.add_bot(TOKEN, "crm_bot", first_name="CRM")
        yield fake


def count(runtime, table) -> int:
    with runtime.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_seeded_over_the_cli_then_first_contact_on_telegram(
    make_runtime, tg: FakeTelegramAPI, db_url: str, tmp_path: Path
) -> None:
    bots = tmp_path / "bots"
    write_bot(bots, "crm-bot", bot_py=CRM_BOT)
    (tmp_path / "cwd").mkdir()
    env = {**_base_env(), "MNEMOBOT_DATABASE_URL": db_url, "MNEMOBOT_BOTS_DIR": str(bots)}
    cli = Cli(cwd=tmp_path / "cwd", env=env)
    ana, bob = Person(5550001, "Ana", "Souza"), Person(5550002, "Bob")

    # Before anyone writes: Ana by e-mail and Telegram account, Bob by e-mail only.
    ana_id = ok(
        cli("people", "add", "--email", "ana@acme.test", "--account", "telegram:5550001")
    ).strip()
    ok(cli("memory", "set", "company", '"Acme"', "--type", "fact", "--user", "telegram:5550001"))
    ok(cli("memory", "set", "plan", "Pro", "--text", "--user", "ana@acme.test"))
    bob_id = ok(cli("people", "add", "--email", "bob@acme.test", "--name", "Bob B.")).strip()
    ok(cli("memory", "set", "company", '"Initech"', "--type", "fact", "--user", "bob@acme.test"))

    runtime = await make_runtime(
        bots_dir=bots,
        channels=[
            {
                "name": "crm-telegram",
                "kind": "telegram",
                "bot": "crm-bot",
                "token_env": "TG_CRM_TOKEN",
                "base_url": tg.base_url,
                "poll_timeout": 0.5,
            }
        ],
    )
    [channel] = build_channels(runtime)
    await channel.start()
    line = Line(tg, runtime, channel, TOKEN)  # type: ignore[arg-type]
    try:
        # Ana's first message ever: she is the person seeded, and the bot knows her company.
        assert await line.says(ana, "hi") == ["Welcome, Ana Souza! How is Acme doing on Pro?"]
        assert runtime.identity.find("telegram:5550001") == ana_id
        assert count(runtime, USERS) == 2  # Ana and Bob, nobody new

        # Bob writes before his account is tied to him: a stranger, for now.
        assert await line.says(bob, "hello") == ["Hello! I don't know you yet."]
        stranger = runtime.identity.find("telegram:5550002")
        assert stranger != bob_id
        linked = ok(cli("people", "link", "bob@acme.test", "--account", "telegram:5550002"))
        assert linked == (
            f"linked telegram:5550002 to {bob_id} (merged user {stranger} into {bob_id})\n"
        )
        assert await line.says(bob, "hello again") == [
            "Welcome, Bob! How is Initech doing on None?"
        ]
        assert runtime.identity.find("telegram:5550002") == bob_id
        assert count(runtime, USERS) == 2 and count(runtime, IDENTITIES) == 2
    finally:
        await channel.stop()
