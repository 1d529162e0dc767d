"""The support bot: greets the person by name, in their language, and files tickets.

It never asks for the name or language: sales-bot (or any bot) already put them in user
memory. When sales-bot hands over, the handoff context arrives in user memory as
``handoff_context``; it goes into this session's context and is then cleared.
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
TICKET = {
    "pt-BR": 'Anotei, {name}: ticket #{n} — "{text}".',
    "es": 'Anotado, {name}: ticket #{n} — "{text}".',
    "fr": "C'est noté, {name} : ticket n°{n} — « {text} ».",
    "de": "Notiert, {name}: Ticket #{n} — „{text}“.",
    "en": 'Noted, {name}: ticket #{n} — "{text}".',
}


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
    await ctx.say(TICKET.get(language, TICKET["en"]).format(name=name, n=number, text=text))


def small_talk(text):
    """Whether ``text`` is only a greeting, thanks or assent ("hi!", "obrigado", "ok, thanks")."""
    words = [w.strip(".,!?¡¿:;()'\"") for w in text.lower().split()]
    words = [w for w in words if w]
    return bool(words) and all(w in SMALL_TALK for w in words)


async def on_message(ctx):
    if await ctx.session.get("waiting_for") == "name":
        await ctx.user.facts.set("name", ctx.text.strip().split()[0].capitalize())
        await ctx.session.delete("waiting_for")
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
