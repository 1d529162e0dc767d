"""What every part of the admin service shares: who acts, how it refuses, what it holds.

The parts (:mod:`runtime.admin_people`, :mod:`runtime.admin_edits`, :mod:`runtime.admin_bots`)
never call one another; all they have in common lives here, so each can be read alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mnemobot.runtime.errors import MnemobotError

if TYPE_CHECKING:
    from mnemobot.runtime.ops.audit import AuditLog
    from mnemobot.runtime.pipeline.runtime import Runtime

__all__ = ["Actor", "AdminConflict", "AdminNotFound", "AdminPart", "iso"]


class AdminNotFound(MnemobotError):
    """The key, fact, episode or identity named does not exist (for that person or bot)."""


class AdminConflict(MnemobotError):
    """The change asked for is refused as it stands (e.g. unlinking someone's last account)."""


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
        runtime: the started runtime (its stores, bots, settings and clock are used).
        audit: where writes are recorded.
    """

    def __init__(self, runtime: Runtime, audit: AuditLog) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.clock = runtime.clock
        self.audit = audit
