"""Two example bots sharing what they remember of a person, read as transcripts."""

from __future__ import annotations

from tests.support import Chat


async def test_support_bot_greets_by_the_name_and_language_sales_bot_learned(make_runtime):
    runtime = await make_runtime()
    sales = Chat(runtime, bot="sales-bot", user="ana")

    assert await sales.say("hi") == ["sales-bot: Hi! I'm the sales bot. What's your name?"]
    assert await sales.say("Ana") == [
        "sales-bot: Nice to meet you, Ana! Which language do you prefer? "
        "(English, Português, Español, Français, Deutsch)"
    ]
    assert (await sales.say("Português"))[0].startswith("sales-bot: Certo, Ana (pt-BR).")

    support = Chat(runtime, bot="support-bot", user="ana")
    assert await support.say("hello") == [
        "support-bot: Olá, Ana! Sou o bot de suporte. Como posso ajudar?"
    ]

    memory = await _user_memory(runtime, await sales.user_id())
    assert memory["name"] == "Ana"
    assert memory["language"] == "pt-BR"


async def test_sales_bot_understands_a_name_and_a_language_said_in_a_sentence(make_runtime):
    sales = Chat(await make_runtime(), bot="sales-bot", user="dora")
    await sales.say("hello")

    assert (await sales.say("my name is Dora"))[0].startswith("sales-bot: Nice to meet you, Dora!")
    assert (await sales.say("I prefer French, please"))[0].startswith(
        "sales-bot: C'est noté, Dora (fr)."
    )


async def test_welcome_bot_understands_a_name_and_a_language_said_in_a_sentence(make_runtime):
    runtime = await make_runtime()
    welcome = Chat(runtime, bot="welcome-bot", user="eva")
    await welcome.say("hi")

    assert await welcome.say("my name is eva maria.") == [
        "welcome-bot: Nice to meet you, Eva Maria! Which language do you prefer?"
        " (English, Português, Español)"
    ]
    assert await welcome.say("I prefer Portuguese") == [
        "welcome-bot: Olá, Eva Maria! Esta é a sua visita número 1."
    ]
    memory = await _user_memory(runtime, await welcome.user_id())
    assert memory == {"name": "Eva Maria", "language": "pt-BR", "welcome_visits": 1}


async def test_sales_bot_welcomes_a_known_person_back_in_their_language(make_runtime):
    runtime = await make_runtime()
    welcome = Chat(runtime, bot="welcome-bot", user="ines")
    for line in ("hi", "Inês", "Español"):
        await welcome.say(line)

    sales = Chat(runtime, bot="sales-bot", user="ines")
    assert await sales.say("hola") == [
        "sales-bot: ¡Hola de nuevo, Inês! Vendemos los planes Basic, Pro y Team. "
        "Pregúntame lo que quieras, o di 'ayuda' si algo no funciona."
    ]


async def test_still_greeted_after_the_process_restarts(make_runtime):
    first = await make_runtime()
    sales = Chat(first, bot="sales-bot", user="bruno")
    for line in ("hi", "Bruno", "Español"):
        await sales.say(line)
    await first.stop()

    second = await make_runtime()
    support = Chat(second, bot="support-bot", user="bruno")
    assert await support.say("hola") == [
        "support-bot: ¡Hola, Bruno! Soy el bot de soporte. ¿En qué puedo ayudarte?"
    ]


async def test_transfer_carries_the_handoff_context_which_the_receiver_clears(make_runtime):
    runtime = await make_runtime()
    sales = Chat(runtime, bot="sales-bot", user="carla")
    for line in ("hi", "Carla", "English"):
        await sales.say(line)

    replies = await sales.say("I have a problem with my invoice")

    assert replies == [
        "sales-bot: Let me bring in our support bot, Carla.",
        "support-bot: Hello, Carla! I'm the support bot. How can I help?",
        'support-bot: Noted, Carla: ticket #1 — "I have a problem with my invoice".',
    ]
    user_id = await sales.user_id()
    memory = await _user_memory(runtime, user_id)
    assert "handoff_context" not in memory  # read once by support-bot, then cleared
    assert memory["support_tickets"] == [{"ticket": 1, "text": "I have a problem with my invoice"}]
    session = runtime.sessions
    with runtime.db.read() as conn:
        from mnemobot.runtime.storage.tables import SESSION_MEMORY, SESSIONS

        active = conn.execute(
            SESSIONS.select().where(SESSIONS.c.user_id == user_id, SESSIONS.c.ended_at.is_(None))
        ).one()
        context = dict(
            conn.execute(
                SESSION_MEMORY.select()
                .with_only_columns(SESSION_MEMORY.c.key, SESSION_MEMORY.c.value)
                .where(SESSION_MEMORY.c.session_id == active.id, SESSION_MEMORY.c.kind == "context")
            ).all()
        )
    assert session is not None
    assert active.active_bot == "support-bot"  # the conversation now belongs to support-bot
    assert context == {
        "background": "Carla asked sales for help: I have a problem with my invoice",
        "intent": "I have a problem with my invoice",
    }
    # the next message in the same conversation goes to support-bot
    assert await sales.say("it still fails") == [
        'support-bot: Noted, Carla: ticket #2 — "it still fails".'
    ]


async def test_another_person_sees_none_of_it(make_runtime):
    runtime = await make_runtime()
    ana = Chat(runtime, bot="sales-bot", user="ana")
    for line in ("hi", "Ana", "Português"):
        await ana.say(line)

    eve = Chat(runtime, bot="support-bot", user="eve")
    replies = await eve.say("hello")

    assert replies == [
        "support-bot: Hello! I'm the support bot. I don't know you yet: what's your name? "
        "(Or tell sales-bot, and I'll remember.)"
    ]
    assert await _user_memory(runtime, await eve.user_id()) == {}


async def _user_memory(runtime, user_id):
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryScope

    scope = MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, UserMemoryPolicy()))
    return await scope.items()


async def test_the_basic_welcome_bot_shares_memory_with_the_python_bots(make_runtime):
    runtime = await make_runtime()
    welcome = Chat(runtime, bot="welcome-bot", user="leo")
    assert await welcome.say("hi") == ["welcome-bot: Welcome! What's your name?"]
    assert await welcome.say("Leo") == [
        "welcome-bot: Nice to meet you, Leo! Which language do you prefer? (English, Português, Español)"
    ]
    assert await welcome.say("Español") == ["welcome-bot: ¡Hola, Leo! Esta es tu visita número 1."]

    support = Chat(runtime, bot="support-bot", user="leo")
    assert await support.say("hola") == [
        "support-bot: ¡Hola, Leo! Soy el bot de soporte. ¿En qué puedo ayudarte?"
    ]

    ana = Chat(runtime, bot="sales-bot", user="ana")
    for line in ("hi", "Ana", "Português"):
        await ana.say(line)
    assert await Chat(runtime, bot="welcome-bot", user="ana").say("oi") == [
        "welcome-bot: Olá, Ana! Esta é a sua visita número 1."  # nothing asked: sales-bot knew
    ]
