"""Commands every bot understands, handled by the runtime before any bot runs.

``/link`` and ``/link CODE`` link accounts, ``/end`` ends the session, ``/forget`` (then
``/forget yes``) deletes everything held about the person. They live here, not in bots, so
that no bot can forget to offer them and no bot can fake them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mnemobot.runtime.errors import LinkError
from mnemobot.runtime.memory.store import MemoryScope
from mnemobot.runtime.people.linking import LinkService

__all__ = [
    "COMMANDS",
    "SESSION_ENDED",
    "CommandOutcome",
    "is_command",
    "run_command",
    "session_ended",
]

COMMANDS = ("/link", "/end", "/forget")
FORGET_CONFIRM_SECONDS = 300
# "/end" in the person's language (user memory ``language``, as the example bots keep it).
SESSION_ENDED = {
    "en": "Conversation ended. Say anything to start a new one.",
    "pt": "Conversa encerrada. Diga qualquer coisa para começar outra.",
    "es": "Conversación terminada. Di cualquier cosa para empezar otra.",
    "fr": "Conversation terminée. Dites n'importe quoi pour en commencer une autre.",
    "de": "Unterhaltung beendet. Schreiben Sie etwas, um eine neue zu beginnen.",
}


def is_command(text: str) -> bool:
    """Whether a person's message is a command (``/end``): said to the runtime, not something
    the person said (episodes and recall leave them out). Recall asks it of every line it
    reads, so a line that does not start with "/" is not split into words."""
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return False
    return stripped.split(maxsplit=1)[0].lower() in COMMANDS


def session_ended(language: object) -> str:
    """The ``/end`` reply in ``language`` (``pt-BR``, ``es``, ...); English when unknown."""
    base = str(language or "").lower().replace("_", "-").split("-")[0]
    return SESSION_ENDED.get(base, SESSION_ENDED["en"])


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command did, for the pipeline to commit."""

    reply: str
    end_session: bool = False
    merged_into: str | None = None  # the user id this account now belongs to
    forget: bool = False  # delete the person entirely (confirmed)


async def run_command(
    words: list[str],
    *,
    user_id: str,
    linking: LinkService,
    run_db: Callable[..., Awaitable[Any]],
    runtime_memory: MemoryScope,
    now: datetime,
    code_ttl: int,
    language: Callable[[], Awaitable[object]] | None = None,
) -> CommandOutcome | None:
    """Handle ``words`` if they are a command; None lets the message go to the bot.

    ``run_db`` is ``Database.run``: linking runs blocking storage calls through it.
    ``language`` reads the person's language, for the replies that are said in it (only
    called when one is).
    """
    command = words[0].lower() if words else ""
    if command not in COMMANDS:
        return None
    if command == "/link":
        if len(words) == 1:
            code = await run_db(linking.issue, user_id)
            return CommandOutcome(
                f"Your link code is {code}. Within {code_ttl // 60} minutes, send /link {code} "
                "from your other account (any channel) and I'll know it's you there too."
            )
        try:
            merged = await run_db(linking.redeem, user_id, words[1])
        except LinkError as exc:
            return CommandOutcome(f"Couldn't link: {exc}.")
        return CommandOutcome(
            "Linked! Both accounts are now one person to every bot here.",
            merged_into=merged.into_user_id,
        )
    if command == "/end":
        return CommandOutcome(session_ended(await language() if language else None), True)
    # /forget, with a confirmation step kept in the session
    asked = await runtime_memory.get("forget_requested_at")
    if len(words) > 1 and words[1].lower() == "yes":
        fresh = asked is not None and now - datetime.fromisoformat(asked) <= timedelta(
            seconds=FORGET_CONFIRM_SECONDS
        )
        if fresh:
            return CommandOutcome(
                "Done: every bot here has forgotten everything about you "
                "(memory, facts, conversations and linked accounts).",
                forget=True,
            )
        return CommandOutcome("Nothing to confirm: send /forget first.")
    await runtime_memory.set("forget_requested_at", now.isoformat())
    return CommandOutcome(
        "This deletes everything every bot here remembers about you: memory, facts, "
        f"conversations and linked accounts. To confirm, send /forget yes within "
        f"{FORGET_CONFIRM_SECONDS // 60} minutes."
    )
