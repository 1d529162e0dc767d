"""The seed documents' BASIC programs, run through the runtime as bots' ``start.bas``.

Programs come from tests/dialogs/seed_programs.py, copied as written. Where a seed program
is a fragment (it uses variables it never sets, or computes a value it never shows), the
test completes it with a few lines before or after, and says so; the seed's own lines are
never changed, except where a test says why (the cache program's URL).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.pipeline.runtime import APOLOGY
from mnemobot.runtime.settings import LLMSettings
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.dialogs import seed_programs as seeds
from tests.support import Chat, write_bot


def memory_of(runtime, user_id: str) -> dict[str, Any]:
    ref = runtime.memory.user_ref(user_id, runtime.user_policy(next(iter(runtime.bots))))
    return {r.key: r.value for r in runtime.memory.read_rows(ref)}


def rows_of(runtime, user_id: str) -> dict[str, Any]:
    ref = runtime.memory.user_ref(user_id, runtime.user_policy(next(iter(runtime.bots))))
    return {r.key: r for r in runtime.memory.read_rows(ref)}


def bot_memory(runtime, bot: str) -> dict[str, Any]:
    return {r.key: r.value for r in runtime.memory.read_rows(runtime.memory.bot_ref(bot))}


def open_session_id(runtime, user_id: str) -> str:
    from sqlalchemy import select

    from mnemobot.runtime.storage.tables import SESSIONS

    with runtime.db.read() as conn:
        return conn.execute(
            select(SESSIONS.c.id).where(
                SESSIONS.c.user_id == user_id, SESSIONS.c.ended_at.is_(None)
            )
        ).scalar_one()


def context_of(runtime, user_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    from mnemobot.runtime.storage.tables import SESSION_MEMORY

    session = open_session_id(runtime, user_id)
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(SESSION_MEMORY.c.kind, SESSION_MEMORY.c.key, SESSION_MEMORY.c.value).where(
                SESSION_MEMORY.c.session_id == session
            )
        ).all()
    return {(kind, key): value for kind, key, value in rows}


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAKE_MODEL_KEY", "not-a-secret")
    with FakeOpenAI() as server:
        yield server


def model_for(server: FakeOpenAI) -> LiteLLM:
    return LiteLLM(
        LLMSettings(
            default="openai/fake-model", api_base=server.api_base, api_key_env="FAKE_MODEL_KEY"
        )
    )


@pytest.mark.parametrize("program", ["S000_PERSONALIZATION", "S002_PERSONALIZED_GREETING"])
async def test_personalised_greeting_asks_once_then_welcomes_back(make_runtime, tmp_path, program):
    write_bot(tmp_path, "greeter", start_bas=getattr(seeds, program))
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="greeter", user="ana")
    question = (
        "Welcome! What's your name?" if program.startswith("S000") else "Hello! What's your name?"
    )

    assert await chat.say("hi") == [f"greeter: {question}"]
    assert await chat.say("Ana") == ["greeter: Nice to meet you, Ana!"]
    assert await chat.say("/end") == [
        "greeter: Conversation ended. Say anything to start a new one."
    ]
    assert await chat.say("hello again") == ["greeter: Welcome back, Ana!"]
    assert memory_of(runtime, await chat.user_id()) == {"name": "Ana"}


async def test_a_dialog_waiting_at_hear_survives_a_restart(make_runtime, tmp_path):
    write_bot(tmp_path, "greeter", start_bas=seeds.S000_PERSONALIZATION)
    first = await make_runtime(bots_dir=tmp_path)
    assert await Chat(first, bot="greeter", user="ana").say("hi") == [
        "greeter: Welcome! What's your name?"
    ]
    await first.stop()  # the process ends while the dialog waits at HEAR

    second = await make_runtime(bots_dir=tmp_path)
    chat = Chat(second, bot="greeter", user="ana")
    assert await chat.say("Ana") == ["greeter: Nice to meet you, Ana!"]
    assert memory_of(second, await chat.user_id()) == {"name": "Ana"}


async def test_cross_bot_preferences(make_runtime, tmp_path):
    # The seed is one listing with two halves: "in any bot - store" and "in any other bot - use".
    store, use = seeds.S002_CROSS_BOT_PREFERENCES.split("' In any other bot - use preference\n")
    write_bot(tmp_path, "settings-bot", start_bas=store + 'TALK "Saved."\n')
    write_bot(tmp_path, "helper-bot", start_bas="' In any other bot - use preference\n" + use)
    runtime = await make_runtime(bots_dir=tmp_path)

    assert await Chat(runtime, bot="settings-bot", user="ana").say("hi") == ["settings-bot: Saved."]
    assert await Chat(runtime, bot="helper-bot", user="ana").say("oi") == [
        "helper-bot: Olá! Como posso ajudar?"
    ]
    assert await Chat(runtime, bot="helper-bot", user="bob").say("hi") == [
        "helper-bot: Hello! How can I help?"
    ]


async def test_cross_bot_object_keeps_its_fields(make_runtime, tmp_path):
    # Seed 000's sales/support listing, split in its two bots; orderid and total are set first.
    sales, support = seeds.S000_CROSS_BOT_SHARING.split("' In support-bot: Access the same data\n")
    write_bot(tmp_path, "sales-bot", start_bas='orderid = "A-1001"\ntotal = 99.9\n' + sales)
    write_bot(tmp_path, "support-bot", start_bas=support)
    runtime = await make_runtime(bots_dir=tmp_path)

    assert await Chat(runtime, bot="sales-bot", user="ana").say("buy") == []
    assert await Chat(runtime, bot="support-bot", user="ana").say("help") == [
        "support-bot: I see your last order was #A-1001"
    ]
    chat = Chat(runtime, bot="support-bot", user="ana")
    purchase = memory_of(runtime, await chat.user_id())["lastPurchase"]
    assert purchase["orderId"] == "A-1001" and purchase["amount"] == 99.9
    assert isinstance(purchase["date"], int)


async def test_user_facts_reach_the_model_as_data(make_runtime, tmp_path, fake_model):
    # Completed with a TALK of the model's answer, so the person sees it.
    write_bot(tmp_path, "pm-bot", start_bas=seeds.S002_USER_FACTS_AI + "TALK response\n")
    fake_model.answer("Here is a roadmap for Acme Corp.")
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model))
    chat = Chat(runtime, bot="pm-bot", user="ana")

    assert await chat.say("hi") == ["pm-bot: Here is a roadmap for Acme Corp."]
    [messages] = fake_model.chats()
    system = messages[0]["content"]
    assert '"role": "Product Manager"' in system
    assert '"user_profile"' in system  # SET CONTEXT "user_profile" AS facts
    assert messages[-1] == {"role": "user", "content": "Help me draft a product roadmap"}
    rows = rows_of(runtime, await chat.user_id())
    assert {k: (r.value, r.memory_type) for k, r in rows.items()} == {
        "company": ("Acme Corp", "fact"),
        "role": ("Product Manager", "fact"),
        "interests": ("AI, automation, productivity", "fact"),
    }


async def test_bot_statistics_counter(make_runtime, tmp_path, caplog):
    write_bot(tmp_path, "stats-bot", start_bas=seeds.S002_BOT_STATISTICS)
    runtime = await make_runtime(bots_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="mnemobot.runtime.dialogs"):
        for user in ("ana", "bob", "ana"):
            chat = Chat(runtime, bot="stats-bot", user=user)
            await chat.say("hi")
            await chat.say("/end")
    assert bot_memory(runtime, "stats-bot") == {"total_conversations": 3}
    printed = [r.getMessage() for r in caplog.records if "PRINT" in r.getMessage()]
    assert [p.rsplit(": ", 1)[1] for p in printed] == [
        f"This bot has had {n} conversations" for n in (1, 2, 3)
    ]


async def test_feature_flags(make_runtime, tmp_path):
    # Completed: the empty IF gets a TALK, so the flag's effect shows.
    program = seeds.S002_FEATURE_FLAGS.replace(
        "' Enable voice features\n", '\' Enable voice features\nTALK "voice on"\n'
    )
    write_bot(tmp_path, "flags-bot", start_bas=program)
    runtime = await make_runtime(bots_dir=tmp_path)
    assert await Chat(runtime, bot="flags-bot", user="ana").say("hi") == ["flags-bot: voice on"]
    assert bot_memory(runtime, "flags-bot") == {
        "enable_voice": True,
        "max_retries": 3,
        "welcome_message": "Hello! I'm your assistant.",
    }


async def test_cache_refreshes_after_an_hour(make_runtime, tmp_path, clock: ManualClock):
    from tests.system.scenarios.rates_server import RatesServer

    with RatesServer() as rates:
        # The one change to the seed: its public URL points at a local server (no network in
        # tests), which the bot's config allows.
        program = seeds.S002_CACHE_API.replace("https://api.exchangerate.host/latest", rates.url)
        program += 'TALK "USD->BRL " + rates.rates.BRL\n'
        write_bot(
            tmp_path,
            "fx-bot",
            start_bas=program,
            config="name,value\nhttp-allow-private,true\nhttp-allow-hosts,127.0.0.1\n",
        )
        runtime = await make_runtime(bots_dir=tmp_path)
        chat = Chat(runtime, bot="fx-bot", user="ana")

        rates.brl = 5.1
        assert await chat.say("rates?") == ["fx-bot: USD->BRL 5.1"]
        rates.brl = 5.2
        await chat.say("/end")
        clock.advance(minutes=30)
        assert await chat.say("rates?") == ["fx-bot: USD->BRL 5.1"]  # from the cache
        await chat.say("/end")
        clock.advance(minutes=31)
        assert await chat.say("rates?") == ["fx-bot: USD->BRL 5.2"]  # refreshed
        assert rates.hits == 2
        assert bot_memory(runtime, "fx-bot")["exchange_rates_time"] == int(clock.now().timestamp())


async def test_conversation_state_in_the_session(make_runtime, tmp_path, clock: ManualClock):
    # Completed: username/useremail are set first, and "Later in conversation" becomes a later
    # message (a HEAR), with a TALK in the empty IF.
    before, later = seeds.S002_CONVERSATION_STATE.split("' Later in conversation\n")
    program = (
        'username = "Ana"\nuseremail = "ana@example.com"\n'
        + before
        + "HEAR anything\n' Later in conversation\n"
        + later.replace("' Continue collecting\n", '\' Continue collecting\nTALK "still " + step\n')
    )
    write_bot(tmp_path, "form-bot", start_bas=program)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="form-bot", user="ana")
    assert await chat.say("start") == []
    user_id = await chat.user_id()
    assert context_of(runtime, user_id) == {
        ("memory", "current_step"): "collecting_info",
        ("memory", "collected_name"): "Ana",
        ("memory", "collected_email"): "ana@example.com",
    }
    assert await chat.say("next") == ["form-bot: still collecting_info"]
    old_session = open_session_id(runtime, user_id)
    clock.advance(seconds=1801)
    await chat.say("hello")  # a new session: the old one's memory is gone
    assert open_session_id(runtime, user_id) != old_session
    with runtime.db.read() as conn:
        from sqlalchemy import func, select

        from mnemobot.runtime.storage.tables import SESSION_MEMORY

        left = conn.execute(
            select(func.count()).where(SESSION_MEMORY.c.session_id == old_session)
        ).scalar_one()
    assert left == 0


async def test_multi_turn_context_reaches_the_model(make_runtime, tmp_path, fake_model):
    program = 'customerid = "C-42"\norderid = "O-7"\n' + seeds.S002_MULTI_TURN_CONTEXT
    write_bot(tmp_path, "care-bot", start_bas=program + "TALK response\n")
    fake_model.answer("Refund approved for O-7.")
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model))
    assert await Chat(runtime, bot="care-bot", user="ana").say("help") == [
        "care-bot: Refund approved for O-7."
    ]
    system = fake_model.chats()[0][0]["content"]
    for fragment in ('"customer_id": "C-42"', '"issue_type": "refund"', '"order_id": "O-7"'):
        assert fragment in system


async def test_profile_builder(make_runtime, tmp_path):
    write_bot(tmp_path, "profile-bot", start_bas=seeds.S002_PROFILE_BUILDER)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="profile-bot", user="ana")
    await chat.say("hi")
    assert memory_of(runtime, await chat.user_id()) == {"profile": {}}

    # Completed: the "ask for name" comment becomes a question, the answer fills the profile.
    program = seeds.S002_PROFILE_BUILDER.replace(
        "' Ask for name when appropriate\n",
        '\' Ask for name when appropriate\nTALK "What should I call you?"\nHEAR n\nprofile.name = n\n',
    )
    write_bot(tmp_path / "v2", "profile-bot", start_bas=program)
    runtime = await make_runtime(bots_dir=tmp_path / "v2")
    chat = Chat(runtime, bot="profile-bot", user="ana")
    await chat.say("/end")
    assert await chat.say("hi") == ["profile-bot: What should I call you?"]
    await chat.say("Ana")
    assert memory_of(runtime, await chat.user_id()) == {"profile": {"name": "Ana"}}


async def test_preference_learning_asks_the_model_after_ten_choices(
    make_runtime, tmp_path, fake_model, clock: ManualClock
):
    program = 'currentContext = "lunch menu"\n' + seeds.S002_PREFERENCE_LEARNING
    write_bot(tmp_path, "menu-bot", start_bas=program)
    fake_model.answer("Prefers vegetarian dishes.")
    runtime = await make_runtime(bots_dir=tmp_path, llm=model_for(fake_model))
    chat = Chat(runtime, bot="menu-bot", user="ana")
    dishes = ["salad", "tofu", "pizza", "salad", "curry", "salad", "soup", "tofu", "salad", "dal"]
    for dish in dishes:
        await chat.say("hi")  # opens a session: the dialog starts and waits at HEAR
        await chat.say(dish)  # the choice
        await chat.say("/end")
        clock.advance(60)

    memory = memory_of(runtime, await chat.user_id())
    assert [c["choice"] for c in memory["choices_history"]] == dishes
    assert memory["choices_history"][0]["context"] == "lunch menu"
    assert memory["learned_preferences"] == "Prefers vegetarian dishes."
    [messages] = fake_model.chats()  # asked once, at the tenth choice
    assert messages[-1]["content"].startswith("Analyze these choices and identify preferences: [")


async def test_context_handoff_between_two_bots(make_runtime, tmp_path):
    # Completed: the sender sets the variables its map uses; the receiver says what it got.
    sender = (
        'currentTopic = "billing"\ndetectedIntent = "refund"\n'
        'summary = "Ana was charged twice"\nfacts = USER FACTS()\n' + seeds.S002_HANDOFF_SENDER
    )
    receiver = (
        seeds.S002_HANDOFF_RECEIVER + 'TALK "Specialist here: " + context.conversationSummary\n'
    )
    write_bot(tmp_path, "front-bot", start_bas=sender)
    write_bot(tmp_path, "specialist-bot", start_bas=receiver)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="front-bot", user="ana")

    assert await chat.say("I was charged twice") == [
        "specialist-bot: Specialist here: Ana was charged twice"
    ]
    user_id = await chat.user_id()
    assert "handoff_context" not in memory_of(runtime, user_id)  # cleared after use
    assert context_of(runtime, user_id) == {
        ("context", "background"): "Ana was charged twice",
        ("context", "intent"): "refund",
    }


async def test_ttl_pattern(make_runtime, tmp_path, clock: ManualClock):
    program = 'authCode = "4821"\n' + seeds.S002_TTL.replace(
        "' Valid\n", '\' Valid\nTALK "code valid"\n'
    ).replace("' Expired or not found\n", '\' Expired or not found\nTALK "code expired"\n')
    write_bot(tmp_path, "auth-bot", start_bas=program)
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="auth-bot", user="ana")
    assert await chat.say("hi") == ["auth-bot: code valid"]
    stored = memory_of(runtime, await chat.user_id())["temp_auth_code"]
    assert stored == {"code": "4821", "expires": int(clock.now().timestamp()) + 300}
    await chat.say("/end")

    # A dialog that only checks, 301 seconds later, finds it expired and clears it.
    check = seeds.S002_TTL.split("' Check expiration\n")[1]
    write_bot(
        tmp_path / "later",
        "auth-bot",
        start_bas=check.replace(
            "' Expired or not found\n", '\' Expired or not found\nTALK "code expired"\n'
        ),
    )
    later = await make_runtime(bots_dir=tmp_path / "later")
    clock.advance(301)
    assert await Chat(later, bot="auth-bot", user="ana").say("hi") == ["auth-bot: code expired"]
    assert "temp_auth_code" not in memory_of(later, await chat.user_id())


async def test_set_bot_memory_and_get_bot_memory_into(make_runtime, tmp_path):
    write_bot(tmp_path, "legacy-bot", start_bas=seeds.S001_EXAMPLE)
    runtime = await make_runtime(bots_dir=tmp_path)
    assert await Chat(runtime, bot="legacy-bot", user="ana").say("hi") == [
        "legacy-bot: Hello, world!"
    ]
    assert bot_memory(runtime, "legacy-bot") == {"last_greeting": "Hello, world!"}


async def test_a_runtime_error_rolls_back_and_apologises_naming_file_and_line(
    make_runtime, tmp_path, caplog
):
    write_bot(
        tmp_path,
        "buggy-bot",
        start_bas='SET USER MEMORY "written", "before the error"\nx = "abc" - 1\nTALK "never"\n',
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    chat = Chat(runtime, bot="buggy-bot", user="ana")
    with caplog.at_level(logging.ERROR):
        assert await chat.say("hi") == [f"buggy-bot: {APOLOGY}"]
    assert memory_of(runtime, await chat.user_id()) == {}
    logged = next(r.getMessage() for r in caplog.records if "bot turn failed" in r.getMessage())
    assert "bot=buggy-bot" in logged
    assert "start.bas:2:" in logged


def test_a_syntax_error_refuses_to_load_the_bot_and_shows_the_line(tmp_path: Path):
    from mnemobot.runtime.bots.registry import load_bots
    from mnemobot.runtime.errors import ConfigError

    write_bot(tmp_path, "broken-bot", start_bas='TALK "hi"\nIF x = 1 THEN\nTALK "one"\n')
    with pytest.raises(ConfigError) as caught:
        load_bots(tmp_path)
    message = str(caught.value)
    assert "broken-bot/start.bas:3:11: syntax error:" in message
    assert "the IF opened on line 2: expected END IF" in message
    assert message.endswith('TALK "one"\n              ^')


async def test_an_object_stored_from_basic_has_its_fields_in_a_python_bot(make_runtime, tmp_path):
    sales, _ = seeds.S000_CROSS_BOT_SHARING.split("' In support-bot: Access the same data\n")
    write_bot(tmp_path, "sales-bot", start_bas='orderid = "A-1001"\ntotal = 99.9\n' + sales)
    write_bot(
        tmp_path,
        "py-support",
        bot_py="""
            async def on_message(ctx):
                last = await ctx.user.memory.get("lastPurchase")
                await ctx.say(f"order {last['orderId']} for {last['amount']:.2f}")
        """,
    )
    runtime = await make_runtime(bots_dir=tmp_path)
    await Chat(runtime, bot="sales-bot", user="ana").say("buy")
    assert await Chat(runtime, bot="py-support", user="ana").say("status?") == [
        "py-support: order A-1001 for 99.90"
    ]
