"""A person's free-text memories as an operator sees and corrects them, each change audited.

Seed 004's operator tasks over the admin API: list what is kept, add (seed from another
system), edit in place, delete one or several. Operators write in every ``user-memories``
mode: the mode says whether a *bot's code* may, and seed 004 lets an operator override what
the model stored. Values pass the checks a bot's writes pass (:mod:`runtime.memories.record`)
and the person's limit (the ``user-memory-max-keys`` default); every write runs in one
transaction with its audit record (the memory id as target, never its text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mnemobot.runtime.memories.record import (
    MAX_FEEDBACK_CHARS,
    MAX_INPUT_CHARS,
    Origin,
    check_id,
    check_ids,
    check_note,
    check_text,
    check_topics,
)
from mnemobot.runtime.memories.store import Change
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.ops.admin.base import Actor, AdminPart
from mnemobot.runtime.ops.audit import AuditRecord
from mnemobot.runtime.people.hold import hold_person_in

__all__ = ["PersonMemories"]

_ORIGIN = Origin("admin")


def _notes(said: Any, feedback: Any) -> tuple[str | None, str | None]:
    """A memory's ``input`` and ``feedback``, checked."""
    return (
        check_note(said, "input", MAX_INPUT_CHARS),
        check_note(feedback, "feedback", MAX_FEEDBACK_CHARS),
    )


class PersonMemories(AdminPart):
    """List, add, edit and delete one person's free-text memories."""

    @property
    def limit(self) -> int:
        """The most memories a person may hold when an operator writes."""
        return UserMemoryPolicy().max_keys

    def list(self, user_id: str) -> dict[str, Any]:
        store = self.runtime.memories
        rule = self.runtime.bots.sensitive  # sensitive-values: shown as (hidden)
        shown = [rule.shown_memory(m.as_dict()) for m in store.list(user_id)]
        return {"user_id": user_id, "memories": shown}

    def add(
        self,
        actor: Actor,
        user_id: str,
        text: Any,
        topics: Any = None,
        said: Any = None,
        feedback: Any = None,
    ) -> dict[str, Any]:
        """Add a memory; returns it with its new id."""
        clean, tags = check_text(text), check_topics(topics)
        source, remark = _notes(said, feedback)
        with self.db.write() as conn:
            memory = self.runtime.memories.add_in(
                conn,
                user_id,
                clean,
                tags,
                origin=_ORIGIN,
                limit=self.limit,
                input=source,
                feedback=remark,
            )
            self._audit(conn, actor, "memories.add", user_id, memory.id)
        return memory.as_dict()

    def edit(
        self,
        actor: Actor,
        user_id: str,
        memory_id: str,
        text: Any = None,
        topics: Any = None,
        said: Any = None,
        feedback: Any = None,
    ) -> dict[str, Any]:
        """Edit a memory in place; a field not given is kept (the text too, for PATCH)."""
        wanted = check_id(memory_id)
        tags = None if topics is None else check_topics(topics)
        source, remark = _notes(said, feedback)
        clean = None if text is None else check_text(text)
        store = self.runtime.memories
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            if clean is None:
                old = store.get_in(conn, user_id, wanted)
                clean = old.text if old is not None else ""  # unknown: update_in says so
            change = Change(clean, tags, source, remark)
            memory = store.update_in(
                conn, user_id, wanted, change, origin=_ORIGIN, now=self.clock.now()
            )
            self._audit(conn, actor, "memories.edit", user_id, memory.id)
        return memory.as_dict()

    def delete(self, actor: Actor, user_id: str, memory_ids: Sequence[str]) -> dict[str, Any]:
        """Delete memories, all or none; UnknownMemory names those that are not theirs."""
        ids = check_ids(memory_ids)
        store = self.runtime.memories
        with self.db.write() as conn:
            hold_person_in(conn, user_id)
            deleted = store.delete_in(conn, user_id, ids)
            target = ids[0] if len(ids) == 1 else None
            self._audit(
                conn, actor, "memories.delete", user_id, target, details={"deleted": deleted}
            )
        return {"deleted": ids}

    def _audit(
        self,
        conn: Any,
        actor: Actor,
        action: str,
        user_id: str,
        target: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        record = AuditRecord(
            actor.name, action, actor.route, user_id=user_id, target=target, details=details
        )
        self.audit.record_in(conn, record)
