"""The example bots as a new user meets them: in the language they chose, tickets only for
problems, and one name remembered once. Transcripts through the console channel."""

from __future__ import annotations

from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.store import MemoryScope
from tests.support import Chat


async def _memory_rows(runtime, chat):
    user_id = await chat.user_id()
    scope = MemoryScope(runtime.memory, runtime.memory.user_ref(user_id, UserMemoryPolicy()))
    return {row.key: (row.value, row.memory_type) for row in await scope.rows()}


async def meet_sales_bot(runtime, user, name, language):
    sales = Chat(runtime, bot="sales-bot", user=user)
    await sales.say("hi")
    await sales.say(name)
    return sales, (await sales.say(language))[0]


async def test_sales_bot_speaks_the_chosen_language_for_the_rest_of_the_session(make_runtime):
    runtime = await make_runtime()  # no model configured: the bot's own fallback answers
    sales, got_it = await meet_sales_bot(runtime, "ana", "Ana", "Português")

    assert got_it == (
        "sales-bot: Certo, Ana (pt-BR). Vendemos os planos Basic, Pro e Team. "
        "Pergunte o que quiser, ou diga 'suporte' se precisar de ajuda com um problema."
    )
    assert await sales.say("Quanto custa o plano Pro?") == [
        'sales-bot: Obrigado, Ana! Alguém de vendas vai responder sobre "Quanto custa o plano '
        "Pro?\". Diga 'suporte' se algo não funcionar."
    ]
    assert await sales.say("preciso de ajuda, a fatura está errada") == [
        "sales-bot: Vou chamar o nosso bot de suporte, Ana.",
        "support-bot: Olá, Ana! Sou o bot de suporte. Como posso ajudar?",
        'support-bot: Anotei, Ana: ticket #1 — "preciso de ajuda, a fatura está errada".',
    ]


async def test_each_language_gets_its_own_words(make_runtime):
    runtime = await make_runtime()
    expected = {
        ("bruno", "Bruno", "Español"): "sales-bot: Entendido, Bruno (es). Vendemos los planes",
        ("dora", "Dora", "Français"): "sales-bot: C'est noté, Dora (fr). Nous vendons les offres",
        ("emil", "Emil", "Deutsch"): "sales-bot: Alles klar, Emil (de). Wir verkaufen die Tarife",
        ("fay", "Fay", "English"): "sales-bot: Got it, Fay (en). We sell Basic, Pro and Team",
    }
    for (user, name, language), start in expected.items():
        _, got_it = await meet_sales_bot(runtime, user, name, language)
        assert got_it.startswith(start), got_it


async def test_ending_the_conversation_is_said_in_the_persons_language(make_runtime):
    runtime = await make_runtime()
    sales, _ = await meet_sales_bot(runtime, "ana", "Ana", "Português")
    assert await sales.say("/end") == [
        "sales-bot: Conversa encerrada. Diga qualquer coisa para começar outra."
    ]
    welcome = Chat(runtime, bot="welcome-bot", user="ines")
    for line in ("hi", "Inês", "Español"):
        await welcome.say(line)
    assert await welcome.say("/end") == [
        "welcome-bot: Conversación terminada. Di cualquier cosa para empezar otra."
    ]
    stranger = Chat(runtime, bot="sales-bot", user="zoe")  # no language known: English
    await stranger.say("hi")
    assert await stranger.say("/end") == [
        "sales-bot: Conversation ended. Say anything to start a new one."
    ]


async def test_support_bot_files_tickets_for_problems_not_for_greetings(make_runtime):
    runtime = await make_runtime()
    await meet_sales_bot(runtime, "carla", "Carla", "English")
    support = Chat(runtime, bot="support-bot", user="carla")

    assert await support.say("hello") == [
        "support-bot: Hello, Carla! I'm the support bot. How can I help?"
    ]
    assert await support.say("hi again!") == [
        "support-bot: I'm here, Carla. Tell me the problem and I'll open a ticket."
    ]
    assert await support.say("ok, thanks") == [
        "support-bot: I'm here, Carla. Tell me the problem and I'll open a ticket."
    ]
    assert "support_tickets" not in await _memory_rows(runtime, support)

    assert await support.say("my printer is on fire") == [
        'support-bot: Noted, Carla: ticket #1 — "my printer is on fire".'
    ]
    assert (await _memory_rows(runtime, support))["support_tickets"] == (
        [{"ticket": 1, "text": "my printer is on fire"}],
        "preference",
    )


async def test_an_answer_that_is_no_name_is_asked_again_not_taken_for_one(make_runtime):
    """A new user answers "what's your name?" with what they came for."""
    runtime = await make_runtime()
    sorry = "Sorry, I didn't catch your name. What should I call you?"
    sales = Chat(runtime, bot="sales-bot", user="bo")
    await sales.say("hi")
    assert await sales.say("I need help with my invoice") == [f"sales-bot: {sorry}"]
    assert (await sales.say("I'm Bo"))[0].startswith("sales-bot: Nice to meet you, Bo!")

    welcome = Chat(runtime, bot="welcome-bot", user="cy")
    await welcome.say("hi")
    assert await welcome.say("I need help with my invoice") == [f"welcome-bot: {sorry}"]
    assert await welcome.say("call me Cy Lee") == [
        "welcome-bot: Nice to meet you, Cy Lee! Which language do you prefer?"
        " (English, Português, Español)"
    ]
    assert (await _memory_rows(runtime, welcome))["name"] == ("Cy Lee", "fact")


ASKS_NAME = (
    "support-bot: Hello! I'm the support bot. I don't know you yet: what's your name? "
    "(Or tell sales-bot, and I'll remember.)"
)


async def test_support_bot_asked_a_strangers_name_takes_only_a_name_for_one(make_runtime):
    runtime = await make_runtime()
    dana = Chat(runtime, bot="support-bot", user="dana")
    assert await dana.say("hello") == [ASKS_NAME]
    assert await dana.say("hi!") == [ASKS_NAME]  # small talk: asked again

    assert await dana.say("I'm dana-marie") == [
        "support-bot: Hello, Dana-marie! I'm the support bot. How can I help?"
    ]
    assert (await _memory_rows(runtime, dana))["name"] == ("Dana-marie", "fact")

    # another stranger answers with what is wrong: a ticket, not a person called "My"
    eli = Chat(runtime, bot="support-bot", user="eli")
    assert await eli.say("hello") == [ASKS_NAME]
    assert await eli.say("my parcel to Lisbon arrived with a dent") == [
        'support-bot: Noted: ticket #1 — "my parcel to Lisbon arrived with a dent".'
    ]
    rows = await _memory_rows(runtime, eli)
    assert "name" not in rows
    assert rows["support_tickets"][0] == [
        {"ticket": 1, "text": "my parcel to Lisbon arrived with a dent"}
    ]
    assert await eli.say("it is still broken") == [  # no longer asked: a second ticket
        'support-bot: Noted: ticket #2 — "it is still broken".'
    ]


async def test_the_bots_keep_one_name_and_the_prompt_shows_it_once(make_runtime):
    runtime = await make_runtime()
    sales, _ = await meet_sales_bot(runtime, "ana", "Ana", "English")
    welcome = Chat(runtime, bot="welcome-bot", user="eva")
    for line in ("hi", "Eva", "English"):
        await welcome.say(line)
    support = Chat(runtime, bot="support-bot", user="leo")  # support-bot asks itself
    await support.say("hello")
    await support.say("Leo")

    for chat, name in ((sales, "Ana"), (welcome, "Eva"), (support, "Leo")):
        rows = await _memory_rows(runtime, chat)
        assert rows["name"] == (name, "fact")
        assert not [key for key in rows if key != "name" and "name" in key], rows

    from mnemobot.runtime.ops.admin.service import Admin
    from mnemobot.runtime.ops.audit import AuditLog

    admin = Admin(runtime, AuditLog(runtime.db, runtime.clock))
    preview = await admin.bots.prompt_preview(await sales.user_id(), "sales-bot", "Hello!")
    about_ana = [i["text"] for i in preview["items"] if i["section"] == "facts"]
    assert about_ana == ['{"language": "en"}', '{"name": "Ana"}']  # the name once
