"""The sales bot: gets to know the person, then hands support questions to support-bot.

What it learns goes to user memory, which every bot shares: the name (one fact, ``name``)
and the language. From the moment the person picks a language, this bot answers in it, and
support-bot greets them by name, in it, without asking again, on any channel.
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
# Said once the language is known: right after it is picked ("Got it"), to a known person
# opening a new session ("Welcome back"), when handing over to support-bot, and when no
# model answers. Languages given as something else fall back to English.
GOT_IT = {
    "pt-BR": "Certo, {name} (pt-BR). Vendemos os planos Basic, Pro e Team. "
    "Pergunte o que quiser, ou diga 'suporte' se precisar de ajuda com um problema.",
    "es": "Entendido, {name} (es). Vendemos los planes Basic, Pro y Team. "
    "Pregúntame lo que quieras, o di 'ayuda' si tienes un problema.",
    "fr": "C'est noté, {name} (fr). Nous vendons les offres Basic, Pro et Team. "
    "Demandez-moi ce que vous voulez, ou dites 'support' en cas de problème.",
    "de": "Alles klar, {name} (de). Wir verkaufen die Tarife Basic, Pro und Team. "
    "Fragen Sie mich alles, oder sagen Sie 'support' bei einem Problem.",
    "en": "Got it, {name} ({language}). We sell Basic, Pro and Team plans. "
    "Ask me anything, or say 'support' for help with a problem.",
}
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
HANDING_OVER = {
    "pt-BR": "Vou chamar o nosso bot de suporte, {name}.",
    "es": "Te paso con nuestro bot de soporte, {name}.",
    "fr": "Je vous passe notre bot d'assistance, {name}.",
    "de": "Ich hole unseren Support-Bot dazu, {name}.",
    "en": "Let me bring in our support bot, {name}.",
}
FOLLOW_UP = {
    "pt-BR": 'Obrigado, {name}! Alguém de vendas vai responder sobre "{text}". '
    "Diga 'suporte' se algo não funcionar.",
    "es": 'Gracias, {name}. Alguien de ventas te responderá sobre "{text}". '
    "Di 'ayuda' si algo no funciona.",
    "fr": "Merci, {name} ! Quelqu'un des ventes vous répondra au sujet de « {text} ». "
    "Dites 'support' si quelque chose ne marche pas.",
    "de": "Danke, {name}! Jemand aus dem Vertrieb meldet sich zu „{text}“. "
    "Sagen Sie 'support', wenn etwas nicht funktioniert.",
    "en": 'Thanks, {name}! A person from sales will follow up about "{text}". '
    "Say 'support' if something is broken.",
}
SUPPORT_WORDS = (
    "support",
    "help",
    "problem",
    "broken",
    "error",
    "suporte",
    "ajuda",
    "problema",
    "ayuda",
    "problème",
    "hilfe",
)
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
    """The name in an answer to "What's your name?": "Ana", "my name is Ana", "I'm Ana.";
    None when the answer is no name ("I need help with my invoice" is nobody called I)."""
    words = text.strip()
    for lead_in in NAME_LEAD_INS:
        if words.lower().startswith(lead_in + " "):
            words = words[len(lead_in) :]
            break
    parts = [part.strip(".,!?;:") for part in words.split()]
    parts = [part for part in parts if part]
    if not 1 <= len(parts) <= 3 or not all(part.replace("-", "").isalpha() for part in parts):
        return None
    return parts[0].capitalize()


def language_from(text):
    """The language in "Português", "I prefer English", "en"; else the answer as given."""
    lowered = text.lower().strip(" .!")
    if lowered in LANGUAGES:
        return LANGUAGES[lowered]
    for word in lowered.replace(",", " ").split():
        if word.strip(".!") in LANGUAGES:
            return LANGUAGES[word.strip(".!")]
    return text


def said(table, language, **fields):
    """``table``'s sentence in ``language`` (English when it has none), filled in."""
    return table.get(language, table["en"]).format(language=language, **fields)


async def on_message(ctx):
    name = await ctx.user.memory.get("name")
    language = await ctx.user.memory.get("language")
    waiting_for = await ctx.session.get("waiting_for")
    text = ctx.text.strip()
    just_learned = waiting_for is not None

    if waiting_for == "name" and not name:
        name = name_from(text)
        if name is None:
            await ctx.say("Sorry, I didn't catch your name. What should I call you?")
            return
        await ctx.user.facts.set("name", name)  # one name: a fact every bot reads
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
        await ctx.say(said(HANDING_OVER, language, name=name))
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
        await ctx.say(said(GOT_IT if just_learned else WELCOME_BACK, language, name=name))
        return
    await ctx.user.memory.set("ctx_last_topic", text, memory_type="context")
    try:
        answer = await ctx.llm(text)  # the persona says: in the person's language
    except Exception:
        answer = said(FOLLOW_UP, language, name=name, text=text)
    await ctx.say(answer)
