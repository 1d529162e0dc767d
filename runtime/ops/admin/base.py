"""What every part of the admin service shares: who acts, how it refuses, what it holds.

The parts (:mod:`runtime.admin_people`, :mod:`runtime.admin_edits`, :mod:`runtime.admin_bots`)
never call one another; all they have in common lives here, so each can be read alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mnemobot.runtime.errors import AdminConflict, AdminNotFound

if TYPE_CHECKING:
    from mnemobot.runtime.bots.registry import Bot, BotRegistry
    from mnemobot.runtime.bots.runner import BotServices
    from mnemobot.runtime.clock import Clock
    from mnemobot.runtime.conversations.sessions import SessionStore
    from mnemobot.runtime.llm.client import LLM
    from mnemobot.runtime.memories.store import MemoriesStore
    from mnemobot.runtime.memory.policy import UserMemoryPolicy
    from mnemobot.runtime.memory.store import MemoryStore
    from mnemobot.runtime.ops.audit import AuditLog
    from mnemobot.runtime.people.identity import IdentityStore
    from mnemobot.runtime.recall.search import Recall
    from mnemobot.runtime.settings import Settings
    from mnemobot.runtime.storage.database import Database

__all__ = ["Actor", "AdminConflict", "AdminNotFound", "AdminPart", "AdminServices", "iso"]


class AdminServices(Protocol):
    """What the admin service uses of the runtime (a started :class:`Runtime` is one).

    The stores it reads and corrects, the bots, the settings for the memory limits and prompt
    budgets, and the model for prompt previews; nothing of the message path.
    """

    @property
    def settings(self) -> Settings: ...
    @property
    def bots(self) -> BotRegistry: ...
    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def memory(self) -> MemoryStore: ...
    @property
    def memories(self) -> MemoriesStore: ...
    @property
    def identity(self) -> IdentityStore: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def llm(self) -> LLM | None: ...
    @property
    def bot_services(self) -> BotServices: ...
    @property
    def recall(self) -> Recall: ...
    @property
    def user_policy(self) -> Callable[[Bot], UserMemoryPolicy]: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, and through which route (both go to the audit log)."""

    name: str
    route: str


def iso(value: Any) -> Any:
    """A datetime as ISO text (answers are JSON); anything else unchanged."""
    return value.isoformat() if isinstance(value, datetime) else value


class AdminPart:
    """What :class:`runtime.admin.Admin` and each of its parts hold, on a started runtime.

    Args:
        runtime: the admin's services of a started runtime (its stores, bots, settings,
            clock and model).
        audit: where writes are recorded.
    """

    def __init__(self, runtime: AdminServices, audit: AuditLog) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.clock = runtime.clock
        self.audit = audit
