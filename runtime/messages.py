"""The neutral messages that cross the line between adapters and the runtime.

An adapter turns a platform event into an :class:`InboundMessage` and each
:class:`OutboundMessage` back into platform calls; nothing in ``runtime/`` knows more about a
platform than the channel's name and kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["InboundMessage", "OutboundMessage", "TurnResult"]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One thing a person said, on one channel instance.

    Args:
        channel: the channel instance's unique name (``sales-telegram``, ``console:sales-bot``).
        channel_kind: telegram, slack, console or web; with ``external_user_id`` it names
            the person's account.
        external_user_id: the account's id on that platform.
        chat_id: where it was said (a DM, a group, a Slack channel + thread).
        text: the message text.
        event_id: the platform's id for this delivery; the same id is handled once.
        display_name: the person's name as the platform shows it.
        language: the platform's language hint for the person (e.g. Telegram language_code).
        email: a verified e-mail address, when the platform gives one.
        payload: the raw platform event, kept in the inbox for replay after a crash.
    """

    channel: str
    channel_kind: str
    external_user_id: str
    chat_id: str
    text: str
    event_id: str
    display_name: str = ""
    language: str | None = None
    email: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation(self) -> str:
        """A conversation is a channel instance + chat + person."""
        return f"{self.channel}|{self.chat_id}|{self.external_user_id}"


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One reply to send, committed with its turn before it is sent."""

    id: str
    channel: str
    chat_id: str
    bot: str
    text: str
    seq: int


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What :meth:`Runtime.handle` did with one inbound message."""

    replies: list[OutboundMessage]
    duplicate: bool = False
    failed: bool = False
    user_id: str | None = None
    bot: str | None = None
