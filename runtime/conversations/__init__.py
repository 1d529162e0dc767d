"""Conversations: events in (inbox), replies out (outbox), sessions, one turn at a time (locks)."""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.conversations.inbox import InboxEntry, InboxStore
    from mnemobot.runtime.conversations.locks import (
        ConversationLocks,
        DeploymentLock,
        LocalLocks,
        locks_for,
    )
    from mnemobot.runtime.conversations.outbox import OutboxStore
    from mnemobot.runtime.conversations.sessions import SessionInfo, SessionStore

__all__ = [
    "ConversationLocks",
    "DeploymentLock",
    "InboxEntry",
    "InboxStore",
    "LocalLocks",
    "OutboxStore",
    "SessionInfo",
    "SessionStore",
    "locks_for",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "InboxEntry": "inbox",
        "InboxStore": "inbox",
        "OutboxStore": "outbox",
        "SessionInfo": "sessions",
        "SessionStore": "sessions",
        "ConversationLocks": "locks",
        "DeploymentLock": "locks",
        "locks_for": "locks",
        "LocalLocks": "locks",
    },
)
