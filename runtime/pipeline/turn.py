"""One turn as it passes through :meth:`Runtime.handle`: the message and what is known so far.

A module of its own because three parts share it and none owns it: the steps in
:mod:`runtime.pipeline` fill it in (inbox entry, person, session), the active bot
(:mod:`runtime.active_bot`) adds memory writes and replies to it, and
:mod:`runtime.turn_commit` writes it in one transaction. What a bot may see of it is
:class:`~runtime.context.TurnState`; what an adapter gets back is
:class:`~runtime.messages.TurnResult`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mnemobot.runtime.bots.context import TurnState
from mnemobot.runtime.conversations.inbox import InboxEntry
from mnemobot.runtime.conversations.sessions import SessionInfo
from mnemobot.runtime.memory.store import PendingWrites
from mnemobot.runtime.messages import InboundMessage, OutboundMessage, TurnResult
from mnemobot.runtime.people.identity import ResolvedUser

__all__ = ["Deliver", "Turn"]

Deliver = Callable[[list[OutboundMessage]], Awaitable[None]]


@dataclass
class Turn:
    """One message's turn; a field left None is not known yet (its step has not run)."""

    msg: InboundMessage
    inbox: InboxEntry | None = None
    user: ResolvedUser | None = None
    session: SessionInfo | None = None
    writes: PendingWrites = field(default_factory=PendingWrites)
    state: TurnState = field(default_factory=TurnState)
    result: TurnResult | None = None
    addressed_bot: str = ""
    logged_text: str | None = None  # what the turn log keeps, when not the whole text
    deliver: Deliver | None = None  # sends committed replies while the conversation is held
    hidden_texts: list[str] = field(default_factory=list)  # sensitive values the log masks
