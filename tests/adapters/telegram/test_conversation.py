"""Whole conversations over Telegram, read as transcripts: real PTB, the fake Bot API, polling."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from mnemobot.runtime.storage.tables import IDENTITIES, USER_MEMORY

from .conftest import SALES_CHANNEL, SUPPORT_CHANNEL
from .support import SALES, SUPPORT, Person

ANA = Person(777, "Ana", "Silva", language_code="pt-br")
BRUNO = Person(888, "Bruno", language_code="es")


def user_memory(runtime, person: Person) -> dict[str, object]:
    with runtime.db.read() as conn:
        user_id = conn.execute(
            select(IDENTITIES.c.user_id).where(
                IDENTITIES.c.channel_kind == "telegram",
                IDENTITIES.c.external_id == str(person.user_id),
            )
        ).scalar_one_or_none()
        if user_id is None:
            return {}
        rows = conn.execute(
            select(USER_MEMORY.c.key, USER_MEMORY.c.value).where(USER_MEMORY.c.user_id == user_id)
        ).all()
    return dict(rows)


async def test_a_person_gets_to_know_the_sales_bot(deploy):
    deployment = await deploy(SALES_CHANNEL)
    sales = deployment.line("sales-telegram")

    assert await sales.says(ANA, "/start") == ["Hi! I'm the sales bot. What's your name?"]
    assert await sales.says(ANA, "Ana") == [
        "Nice to meet you, Ana! Which language do you prefer? "
        "(English, Português, Español, Français, Deutsch)"
    ]
    (got_it,) = await sales.says(ANA, "Português")
    assert got_it.startswith("Certo, Ana (pt-BR).")

    memory = user_memory(deployment.runtime, ANA)
    assert (memory["name"], memory["language"]) == ("Ana", "pt-BR")
    with deployment.runtime.db.read() as conn:
        identity = conn.execute(select(IDENTITIES).where(IDENTITIES.c.external_id == "777")).one()
    assert (identity.channel_kind, identity.display_name) == ("telegram", "Ana Silva")
    assert all(m.parse_mode is None for m in deployment.tg.sent_messages(SALES))


async def test_two_tokens_two_bots_one_memory_of_the_person(deploy):
    deployment = await deploy(SALES_CHANNEL, SUPPORT_CHANNEL)
    sales, support = deployment.line("sales-telegram"), deployment.line("support-telegram")
    for line in ("hi", "Ana", "Português"):
        await sales.says(ANA, line)

    assert await support.says(ANA, "oi") == ["Olá, Ana! Sou o bot de suporte. Como posso ajudar?"]
    assert await support.says(BRUNO, "hola") == [
        "Hello! I'm the support bot. I don't know you yet: what's your name? "
        "(Or tell sales-bot, and I'll remember.)"
    ]
    assert user_memory(deployment.runtime, BRUNO) == {}
    tg = deployment.tg
    assert [m.text for m in tg.sent_messages(SUPPORT, chat_id=777)] == [
        "Olá, Ana! Sou o bot de suporte. Como posso ajudar?"
    ]
    assert len(tg.sent_messages(SALES, chat_id=777)) == 3


async def test_forget_asks_for_confirmation_then_removes_the_person(deploy):
    deployment = await deploy(SALES_CHANNEL, SUPPORT_CHANNEL)
    sales, support = deployment.line("sales-telegram"), deployment.line("support-telegram")
    for line in ("hi", "Ana", "Português"):
        await sales.says(ANA, line)
    assert user_memory(deployment.runtime, ANA)

    (ask,) = await support.says(ANA, "/forget")
    assert "/forget yes" in ask
    assert user_memory(deployment.runtime, ANA)  # nothing removed before the confirmation

    (done,) = await support.says(ANA, "/forget yes")
    assert done.startswith("Done: every bot here has forgotten everything about you")
    assert user_memory(deployment.runtime, ANA) == {}
    with deployment.runtime.db.read() as conn:
        assert conn.execute(select(IDENTITIES)).all() == []
    assert await sales.says(ANA, "hi again") == ["Hi! I'm the sales bot. What's your name?"]


async def test_link_command_reaches_the_runtime_with_the_bot_suffix_removed(deploy):
    deployment = await deploy(SALES_CHANNEL)
    sales = deployment.line("sales-telegram")
    (answer,) = await sales.says(ANA, "/link@sales_bot")
    assert answer.startswith("Your link code is ")
    code = answer.split()[4].rstrip(".")
    assert code.isdigit() and len(code) == 6


async def test_the_token_never_reaches_a_log_line(deploy, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # `mnemobot run` quietens it process-wide
    deployment = await deploy(SALES_CHANNEL)
    sales = deployment.line("sales-telegram")
    deployment.tg.fail_next(SALES, "sendMessage", status=502)
    await sales.says(ANA, "hi")
    await deployment.stop()

    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log URLs
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert SALES not in logged
    assert SALES.split(":")[1] not in caplog.text
