"""The sales bot: gets to know the person, then hands support questions to support-bot.

What it learns (name, language) goes to user memory, which every bot shares: support-bot
greets the person by both without asking again, on any channel.
"""

LANGUAGES = {
    "english": "en",
    "en": "en",
    "inglés": "en",
    "inglês": "en",
    "português": "pt-BR",
    "portugues": "pt-BR",
    "portuguese": "pt-BR",
    "pt": "pt-BR",
    "pt-br": "pt-BR",
    "español": "es",
    "espanol": "es",
    "spanish": "es",
    "es": "es",
    "français": "fr",
    "francais": "fr",
    "french": "fr",
    "fr": "fr",
    "deutsch": "de",
    "german": "de",
    "de": "de",
}
# A known person opening a new session is welcomed back in their language.
WELCOME_BACK = {
    "pt-BR": "Olá de novo, {name}! Vendemos os planos Basic, Pro e Team. "
    "Pergunte o que quiser, ou diga 'suporte' se algo não funcionar.",
    "es": "¡Hola de nuevo, {name}! Vendemos los planes Basic, Pro y Team. "
    "Pregúntame lo que quieras, o di 'ayuda' si algo no funciona.",
    "fr": "Re-bonjour, {name} ! Nous vendons les offres Basic, Pro et Team. "
    "Demandez-moi ce que vous voulez, ou dites 'support' en cas de problème.",
    "de": "Willkommen zurück, {name}! Wir verkaufen die Tarife Basic, Pro und Team. "
    "Fragen Sie mich alles, oder sagen Sie 'support' bei einem Problem.",
    "en": "Welcome back, {name}! We sell Basic, Pro and Team plans. "
    "Ask me anything, or say 'support' for help with a problem.",
}
SUPPORT_WORDS = ("support", "help", "problem", "broken", "error", "suporte", "ajuda", "ayuda")
# What people put before their name when asked for it, longest first.
NAME_LEAD_INS = (
    "my name is",
    "meu nome é",
    "meu nome e",
    "je m'appelle",
    "ich heiße",
    "ich heisse",
    "me llamo",
    "me chamo",
    "call me",
    "this is",
    "i'm",
    "i am",
    "it's",
    "ich bin",
    "soy",
    "sou",
)


def name_from(text):
    """The name in an answer to "What's your name?": "Ana", "my name is Ana", "I'm Ana."."""
    words = text.strip()
    for lead_in in NAME_LEAD_INS:
        if words.lower().startswith(lead_in + " "):
            words = words[len(lead_in) :]
            break
    first = words.split()[0] if words.split() else ""
    return first.strip(".,!?;:").capitalize()


def language_from(text):
    """The language in "Português", "I prefer English", "en"; else the answer as given."""
    lowered = text.lower().strip(" .!")
    if lowered in LANGUAGES:
        return LANGUAGES[lowered]
    for word in lowered.replace(",", " ").split():
        if word.strip(".!") in LANGUAGES:
            return LANGUAGES[word.strip(".!")]
    return text


async def on_message(ctx):
    name = await ctx.user.memory.get("name")
    language = await ctx.user.memory.get("language")
    waiting_for = await ctx.session.get("waiting_for")
    text = ctx.text.strip()
    just_learned = waiting_for is not None

    if waiting_for == "name" and not name:
        name = name_from(text)
        await ctx.user.memory.set("name", name)
        await ctx.user.facts.set("fact_name", name)
        waiting_for = None
    elif waiting_for == "language" and not language:
        language = language_from(text)
        await ctx.user.memory.set("language", language)
        waiting_for = None

    if not name:
        await ctx.session.set("waiting_for", "name")
        await ctx.say("Hi! I'm the sales bot. What's your name?")
        return
    if not language:
        await ctx.session.set("waiting_for", "language")
        await ctx.say(
            f"Nice to meet you, {name}! Which language do you prefer? "
            "(English, Português, Español, Français, Deutsch)"
        )
        return
    await ctx.session.delete("waiting_for")

    if any(word in text.lower() for word in SUPPORT_WORDS):
        await ctx.bot.memory.increment("handoffs_to_support")
        await ctx.say(f"Let me bring in our support bot, {name}.")
        await ctx.transfer(
            "support-bot",
            handoff={
                "topic": "support",
                "userIntent": text,
                "conversationSummary": f"{name} asked sales for help: {text}",
                "relevantFacts": await ctx.user.facts.all(),
            },
        )
        return

    if waiting_for is None and (await ctx.session.get("greeted")) is None:
        await ctx.session.set("greeted", True)
        if just_learned:
            await ctx.say(
                f"Got it, {name} ({language}). We sell Basic, Pro and Team plans. "
                "Ask me anything, or say 'support' for help with a problem."
            )
        else:
            await ctx.say(WELCOME_BACK.get(language, WELCOME_BACK["en"]).format(name=name))
        return
    await ctx.user.memory.set("ctx_last_topic", text, memory_type="context")
    try:
        answer = await ctx.llm(text)
    except Exception:
        answer = (
            f'Thanks, {name}! A person from sales will follow up about "{text}". '
            "Say 'support' if something is broken."
        )
    await ctx.say(answer)
