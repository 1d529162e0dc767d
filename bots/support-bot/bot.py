"""The support bot: greets the person by name, in their language, and files tickets.

It never asks for the language, and asks for the name only when no bot has it yet: sales-bot
(or any bot) puts both in user memory. An answer to "what's your name?" that is no name ("my
parcel arrived broken") is what the person came for, and is filed as a ticket. When sales-bot
hands over, the handoff context arrives in user memory as ``handoff_context``; it goes into
this session's context and is then cleared.
"""

GREETINGS = {
    "pt-BR": "Olá, {name}! Sou o bot de suporte. Como posso ajudar?",
    "es": "¡Hola, {name}! Soy el bot de soporte. ¿En qué puedo ayudarte?",
    "fr": "Bonjour, {name} ! Je suis le bot d'assistance. Comment puis-je vous aider ?",
    "de": "Hallo, {name}! Ich bin der Support-Bot. Wie kann ich helfen?",
    "en": "Hello, {name}! I'm the support bot. How can I help?",
}
# Said when an open session gets small talk ("hi", "thanks") rather than a problem.
ANYTHING_ELSE = {
    "pt-BR": "Estou aqui, {name}. Conte-me o problema e eu abro um ticket.",
    "es": "Aquí estoy, {name}. Cuéntame el problema y abro un ticket.",
    "fr": "Je suis là, {name}. Décrivez-moi le problème et j'ouvre un ticket.",
    "de": "Ich bin da, {name}. Beschreiben Sie das Problem, und ich lege ein Ticket an.",
    "en": "I'm here, {name}. Tell me the problem and I'll open a ticket.",
}
# Words of greetings, thanks and assent: a message made only of these is no problem to file.
_SMALL_TALK_WORDS = """
    hi hello hey hiya yo there again ok okay good morning afternoon evening thanks thank you thx bye
    great cool fine sure yes no
    oi olá ola bom dia boa tarde noite obrigado obrigada valeu tchau tudo bem sim não
    hola buenos buenas días dias tardes noches gracias vale adiós adios sí
    bonjour bonsoir salut merci oui non d'accord
    hallo guten tag morgen abend danke tschüss ja nein
"""
SMALL_TALK = set(_SMALL_TALK_WORDS.split())
# {to}: ", Ana", or nothing for a person whose name no bot knows
TICKET = {
    "pt-BR": 'Anotei{to}: ticket #{n} — "{text}".',
    "es": 'Anotado{to}: ticket #{n} — "{text}".',
    "fr": "C'est noté{to} : ticket n°{n} — « {text} ».",
    "de": "Notiert{to}: Ticket #{n} — „{text}“.",
    "en": 'Noted{to}: ticket #{n} — "{text}".',
}
# Words people put before their name when asked for it ("I'm Ana", "my name is Ana",
# "je m'appelle Ana", "me llamo Ana", "ich heiße Ana", "meu nome é Ana").
_NAME_LEAD_INS = """
    i i'm im am my name is it's its this call me
    meu nome é e sou me chamo
    mi es soy llamo
    je m'appelle suis moi c'est
    ich bin heiße heisse mein ist
"""
NAME_LEAD_IN_WORDS = set(_NAME_LEAD_INS.split())


async def greet(ctx):
    name = await ctx.user.memory.get("name")
    language = await ctx.user.memory.get("language", "en")
    if not name:
        await ctx.say(
            "Hello! I'm the support bot. I don't know you yet: what's your name? "
            "(Or tell sales-bot, and I'll remember.)"
        )
        await ctx.session.set("waiting_for", "name")
        return
    await ctx.say(GREETINGS.get(language, GREETINGS["en"]).format(name=name))


async def on_transfer(ctx):
    handoff = await ctx.user.memory.get("handoff_context")
    if handoff:
        await ctx.session.context.set("background", handoff.get("conversationSummary", ""))
        await ctx.session.context.set("intent", handoff.get("userIntent", ""))
        await ctx.user.memory.set("handoff_context", "")  # read once, then cleared
    await greet(ctx)
    if handoff and handoff.get("userIntent"):
        await file_ticket(ctx, handoff["userIntent"])


async def file_ticket(ctx, text):
    name = await ctx.user.memory.get("name", "")
    language = await ctx.user.memory.get("language", "en")
    number = await ctx.bot.memory.increment("tickets")
    await ctx.user.memory.append("support_tickets", {"ticket": number, "text": text})
    to = f", {name}" if name else ""
    await ctx.say(TICKET.get(language, TICKET["en"]).format(to=to, n=number, text=text))


def name_in(text):
    """The name in an answer to "what's your name?" ("Ana", "I'm Ana", "my name is Ana
    Lima"), or None when the answer is not a name: "my parcel arrived broken" is a problem
    to file, not a person called My."""
    words = [w.strip(".,!?;:") for w in text.split()]
    words = [w for w in words if w]
    while words and words[0].lower() in NAME_LEAD_IN_WORDS:
        words = words[1:]
    if not 1 <= len(words) <= 3 or not all(w.replace("-", "").isalpha() for w in words):
        return None
    return words[0].capitalize()


def small_talk(text):
    """Whether ``text`` is only a greeting, thanks or assent ("hi!", "obrigado", "ok, thanks")."""
    words = [w.strip(".,!?¡¿:;()'\"") for w in text.lower().split()]
    words = [w for w in words if w]
    return bool(words) and all(w in SMALL_TALK for w in words)


async def on_message(ctx):
    if await ctx.session.get("waiting_for") == "name":
        if small_talk(ctx.text):  # "hi" is no name: ask again
            await greet(ctx)
            return
        await ctx.session.delete("waiting_for")
        name = name_in(ctx.text)
        if name is None:  # they said what is wrong instead: that is what they came for
            await file_ticket(ctx, ctx.text.strip())
            return
        await ctx.user.facts.set("name", name)
        await greet(ctx)
        return
    if ctx.session.opened_now:
        await greet(ctx)
        return
    text = ctx.text.strip()
    if small_talk(text):  # only problems become tickets
        name = await ctx.user.memory.get("name", "")
        language = await ctx.user.memory.get("language", "en")
        await ctx.say(ANYTHING_ELSE.get(language, ANYTHING_ELSE["en"]).format(name=name))
        return
    await file_ticket(ctx, text)
