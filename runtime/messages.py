"""The neutral messages that cross the line between adapters and the runtime.

An adapter turns a platform event into an :class:`InboundMessage` and each
:class:`OutboundMessage` back into platform calls; nothing in ``runtime/`` knows more about a
platform than the channel's name and kind.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
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

    def __post_init__(self) -> None:
        # A lone UTF-16 surrogate ("\ud800", which JSON may escape and json.loads accepts, as a
        # crafted request or a client's bug can send) is not Unicode, and no database stores
        # it: PostgreSQL's json refused the event, SQLite's driver could not encode its turn,
        # and the person got no answer. It becomes U+FFFD here, for every channel, before
        # anything is stored.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and _SURROGATE.search(value):
                object.__setattr__(self, f.name, _SURROGATE.sub("\ufffd", value))
        try:
            json.dumps(self.payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            object.__setattr__(self, "payload", _without_surrogates(self.payload))
        except (TypeError, ValueError):
            pass  # not JSON: the inbox says so when it stores it

    @property
    def conversation(self) -> str:
        """A conversation is a channel instance + chat + person."""
        return f"{self.channel}|{self.chat_id}|{self.external_user_id}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_surrogates(v) for v in value]
    return value


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
