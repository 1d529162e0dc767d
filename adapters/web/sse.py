"""Server-Sent Events for the web chat: the wire format, and what one open page holds.

Kept apart from the channel because these are the parts with no runtime in them: how an
event is framed on the wire (``id:``/``event:``/``data:``), and the per-page queue plus the
reply ids already written, which is what makes a reply both pushed and fetched from the
outbox reach a page once. The channel keeps the registry of open pages and the loop that
feeds them, since those share its state (the outbox, the closing flag, ``send``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from mnemobot.runtime import OutboundMessage

__all__ = ["Stream", "reply_event", "sse"]


@dataclass(eq=False)
class Stream:
    """One open page (an SSE connection) of one visitor for one bot."""

    queue: asyncio.Queue[tuple[OutboundMessage, asyncio.Future[None]] | None] = field(
        default_factory=asyncio.Queue
    )
    shown: dict[str, None] = field(default_factory=dict)  # reply ids written, oldest first
    address: str = ""  # where the page connects from (its stream counts against it)

    def remember(self, reply_id: str, keep: int = 500) -> None:
        """Note a written reply, so one both pushed and found pending is written once."""
        self.shown[reply_id] = None
        while len(self.shown) > keep:
            del self.shown[next(iter(self.shown))]


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One SSE event; ``data`` as one line of JSON, so the page parses it whole."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def reply_event(reply: OutboundMessage) -> str:
    """A reply as the page sees it; the reply id doubles as the event id, for dropping repeats."""
    return sse("reply", {"id": reply.id, "bot": reply.bot, "text": reply.text}, reply.id)
