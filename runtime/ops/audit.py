"""The audit log: every write made through the admin API, who made it, when and to what.

A row says who (the name that came with the admin token, else ``admin``), when, which
action and route, which person (by user id only), which bot and which key or row. It never
holds a memory value, a message or a token, so it can outlive the data it talks about:
``forget`` deletes the person's own rows and keeps these, which is how an operator can later
show that, when and by whom someone was forgotten. ``audit_log`` is therefore deliberately
not in ``PERSONAL_TABLES``; its column is ``subject_user_id``, as ``merges`` names users.

A write is recorded with :meth:`AuditLog.record_in` inside the transaction that makes it, so
there is never a change without its record, nor a record of a change that rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import AUDIT_LOG

__all__ = ["AuditLog", "AuditRecord"]

_a = AUDIT_LOG.c
MAX_LISTED = 1000


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What one admin write was; ``details`` holds counts, never values."""

    actor: str
    action: str
    route: str
    user_id: str | None = None
    bot: str | None = None
    target: str | None = None
    details: dict[str, Any] | None = None


class AuditLog:
    """Writes and reads ``audit_log``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def record_in(self, conn: Connection, record: AuditRecord) -> int:
        """Store ``record`` on ``conn``, inside the caller's transaction; returns the row id."""
        row_id = conn.execute(
            insert(AUDIT_LOG)
            .values(
                at=self.clock.now(),
                actor=record.actor[:128],
                action=record.action,
                route=record.route[:255],
                subject_user_id=record.user_id,
                bot=record.bot,
                target=None if record.target is None else record.target[:255],
                details=record.details,
            )
            .returning(_a.id)
        ).scalar_one()
        return int(row_id)

    def entries(
        self, *, user_id: str | None = None, limit: int = 100, before: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The newest entries first, about one person or all, at most ``limit`` (<= 1000).

        Ids increase with each write, so they give the order even when clocks tie.
        """
        query = select(AUDIT_LOG)
        if user_id is not None:
            query = query.where(_a.subject_user_id == user_id)
        if before is not None:
            query = query.where(_a.at < before)
        query = query.order_by(_a.id.desc()).limit(max(1, min(limit, MAX_LISTED)))
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {
                "id": r["id"],
                "at": r["at"].isoformat(),
                "actor": r["actor"],
                "action": r["action"],
                "route": r["route"],
                "user_id": r["subject_user_id"],
                "bot": r["bot"],
                "target": r["target"],
                "details": r["details"],
            }
            for r in rows
        ]
