"""Seed 002's "don't store sensitive data", made enforceable (issue 16): a bot that stores a
password and a card number anyway names them in config.csv (sensitive-keys,
sensitive-values); its code still reads them, but no model request carries them and the
admin API shows them as (hidden). litellm for real against FakeOpenAI; SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from mnemobot.adapters.admin.api import admin_routes
from mnemobot.adapters.admin.auth import ADMIN_TOKEN_ENV
from mnemobot.adapters.server import build_app
from mnemobot.runtime.bots.runner import preview_prompt
from mnemobot.runtime.memories import Origin
from mnemobot.runtime.storage.tables import TURNS
from tests.support import Chat, write_bot
from tests.system.scenarios.test_basic_seeds import fake_model, model_for

__all__ = ["fake_model"]  # the FakeOpenAI fixture

PASSWORD = "hunter2-Secret"
CARD = "4111 1111 1111 1111"
PROGRAM = """
TALK "Password?"
HEAR userPassword
SET USER MEMORY "password", userPassword
TALK "Card number?"
HEAR cardNumber
SET USER MEMORY "credit_card", cardNumber
SET USER FACT "company", "Acme"
SET CONTEXT "door_pin" AS "4321-9"
stored = GET USER MEMORY("password")
TALK "Saved (" + LEN(stored) + " characters)"
answer = LLM "What do you know about me?"
TALK answer
"""
CONFIG = "name,value\nsensitive-keys,password;*_PIN\nsensitive-values,card-number\n"
TOKEN = "test-token-0123456789abcdef"


async def test_stored_secrets_never_reach_the_model_and_are_hidden_from_operators(
    make_runtime, tmp_path, fake_model
) -> None:
    write_bot(tmp_path, "shop-bot", start_bas=PROGRAM, config=CONFIG)
    fake_model.answer("You work at Acme.")
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model))
    chat = Chat(runtime, bot="shop-bot", user="ana")

    assert await chat.say("hi") == ["shop-bot: Password?"]
    assert await chat.say(PASSWORD) == ["shop-bot: Card number?"]
    # the bot's own code reads what it stored
    assert await chat.say(CARD) == [
        "shop-bot: Saved (14 characters)",
        "shop-bot: You work at Acme.",
    ]

    [request] = fake_model.requests("chat.completions")
    sent = json.dumps(request.params)
    assert '\\"company\\": \\"Acme\\"' in sent  # what is not sensitive still goes in
    for secret in (PASSWORD, CARD, "4111111111111111", "4321-9", "door_pin", '\\"password'):
        assert secret not in sent, secret
    # the turn log (what recall, summaries and later prompts read) holds no password either
    with runtime.db.read() as conn:
        logged = [t for (t,) in conn.execute(select(TURNS.c.text))]
    assert "(hidden)" in logged and not any(PASSWORD in t for t in logged)

    user_id = await chat.user_id()
    built, _ = await preview_prompt(
        runtime.bot_services, runtime.bots.get("shop-bot"), user_id, "Do you know my password?"
    )
    # password, credit_card, door_pin, and what recall found for "password": its key
    assert built.kept_out == 4
    assert "kept out as sensitive (sensitive-keys/-values): 4" in built.report()
    assert PASSWORD not in built.report()

    # a free-text memory holding a card number (sensitive-values) is shown hidden too
    runtime.memories.add(user_id, f"Pays with {CARD}", ("payment",), origin=Origin("cli"), limit=10)
    paying, _ = await preview_prompt(
        runtime.bot_services, runtime.bots.get("shop-bot"), user_id, "How do I pay?"
    )
    assert "Pays with" not in paying.report() and "4111" not in paying.report()
    app = build_app(
        admin_routes(runtime, environ={ADMIN_TOKEN_ENV: f"ops:{TOKEN}"}), bots=["shop-bot"]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://admin.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as api:
        detail = (await api.get(f"/admin/api/users/{user_id}")).json()
        listed = (await api.get(f"/admin/api/users/{user_id}/memories")).json()
        put = await api.put(f"/admin/api/users/{user_id}/memory/bank_pin", json={"value": "7"})
        found = (
            await api.get(f"/admin/api/users/{user_id}/recall", params={"q": "password"})
        ).json()
    memory = {m["key"]: m["value"] for m in detail["memory"]}
    assert memory == {"company": "Acme", "credit_card": "(hidden)", "password": "(hidden)"}
    [session] = detail["sessions"]
    assert session["context"][0] == {**session["context"][0], "value": "(hidden)"}
    assert [m["text"] for m in detail["memories"]] == ["(hidden)"]
    assert [m["text"] for m in listed["memories"]] == ["(hidden)"]
    shown = json.dumps(detail) + json.dumps(listed)
    assert PASSWORD not in shown and "4111" not in shown and "4321-9" not in shown
    assert put.json()["value"] == "(hidden)"  # stored, shown hidden (bank_pin: *_PIN)
    hits = [h for h in found["results"] if h.get("key") == "password"]
    assert hits and {h["text"] for h in hits} == {"(hidden)"}
    assert PASSWORD not in json.dumps(found)
