"""Agentic free-text memories: after a session, the model edits the person's memories.

With ``user-memories,agentic`` in a bot's ``config.csv`` the episode worker shows the model
the memories already kept (numbered 1..n) and the finished conversation, and asks for one
JSON answer of additions, updates and deletions (:mod:`.prompts`). Seeing what is kept is
what lets it refine a memory instead of piling up near-duplicates.

The answer is vetted before anything is written: texts and topics pass the same checks as a
bot's writes (:mod:`runtime.memories.record`), anything that looks like a secret is dropped,
a change to a memory that changed since the model read it is dropped, an addition that
repeats a kept memory word for word or would pass the person's limit is dropped. What
survives is applied in one transaction, each change recording the session and bot it came
from (``source`` agentic). Refusals are counted and given as reasons, never with the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from mnemobot.runtime.episodes.changes import Changes
from mnemobot.runtime.episodes.memories.prompts import MemoryEdits, ShownMemory
from mnemobot.runtime.errors import InvalidValue, UnknownUser
from mnemobot.runtime.memories.record import Memory, Origin, check_text, check_topics
from mnemobot.runtime.memories.store import Change, MemoriesStore
from mnemobot.runtime.memory.secrets_filter import secret_reason
from mnemobot.runtime.people.hold import hold_person_in

__all__ = ["MAX_SHOWN", "apply_memory_edits", "shown_memories"]

MAX_SHOWN = 200  # the most recently changed memories the model is shown


def shown_memories(conn: Connection, user_id: str) -> list[ShownMemory]:
    """The person's memories as the model will see them, numbered oldest first."""
    kept = MemoriesStore.list_in(conn, user_id, newest=MAX_SHOWN)
    return [ShownMemory(n, m.id, m.text, m.topics) for n, m in enumerate(kept, start=1)]


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


class _Apply:
    """One application of the model's edits, inside the caller's transaction."""

    def __init__(
        self,
        conn: Connection,
        store: MemoriesStore,
        user_id: str,
        origin: Origin,
        limit: int,
        now: datetime,
    ) -> None:
        self.conn, self.store, self.user_id = conn, store, user_id
        self.origin, self.limit, self.now = origin, limit, now
        self.current: dict[str, Memory] = {m.id: m for m in store.list_in(conn, user_id)}
        self.touched: set[str] = set()
        self.changes = Changes()

    def refuse(self, what: str, why: str) -> None:
        self.changes.rejected.append(f"{what}: {why}")

    def _vetted(
        self, what: str, text: str, topics: Sequence[str] | None
    ) -> tuple[str, tuple[str, ...] | None] | None:
        try:
            clean = check_text(text)
            tags = None if topics is None else check_topics(topics)
        except InvalidValue as exc:
            self.refuse(what, str(exc))
            return None
        secret = secret_reason("memory", [clean, *(tags or ())])
        if secret:
            self.refuse(what, secret)
            return None
        return clean, tags

    def _still_as_shown(self, shown: ShownMemory, what: str) -> bool:
        now = self.current.get(shown.id)
        if shown.id in self.touched:
            self.refuse(what, "the memory was already changed by this answer")
        elif now is None or now.text != shown.text or now.topics != shown.topics:
            self.refuse(what, "the memory changed after the model read it")
        else:
            return True
        return False

    def delete(self, shown: ShownMemory) -> None:
        what = f"delete #{shown.number}"
        if not self._still_as_shown(shown, what):
            return
        self.store.delete_in(self.conn, self.user_id, [shown.id])
        del self.current[shown.id]
        self.touched.add(shown.id)
        self.changes.deleted.append(shown.id)

    def update(self, shown: ShownMemory, text: str, topics: Sequence[str] | None) -> None:
        what = f"update #{shown.number}"
        vetted = self._vetted(what, text, topics)
        if vetted is None or not self._still_as_shown(shown, what):
            return
        clean, tags = vetted
        if clean == shown.text and tags in (None, shown.topics):
            return
        edited = self.store.update_in(
            self.conn,
            self.user_id,
            shown.id,
            Change(clean, tags),
            origin=self.origin,
            now=self.now,
        )
        self.current[shown.id] = edited
        self.touched.add(shown.id)
        self.changes.updated.append(shown.id)

    def add(self, text: str, topics: Sequence[str], said: str | None) -> None:
        what = f"add {text[:40]!r}" if not secret_reason("memory", text) else "add"
        vetted = self._vetted(what, text, topics)
        if vetted is None:
            return
        clean, tags = vetted
        if said is not None and secret_reason("input", said):
            said = None  # the memory itself passed; its quoted source is not kept
        same = [m for m in self.current.values() if _normal(m.text) == _normal(clean)]
        if same:
            self.refuse(what, "it repeats a kept memory")
        elif len(self.current) >= self.limit:
            self.refuse(what, f"user memories are full ({self.limit}, user-memory-max-keys)")
        else:
            memory = self.store.insert_in(
                self.conn,
                self.user_id,
                clean,
                tags or (),
                origin=self.origin,
                now=self.now,
                input=said or None,
            )
            self.current[memory.id] = memory
            self.changes.added.append(memory.id)


def apply_memory_edits(
    conn: Connection,
    store: MemoriesStore,
    *,
    user_id: str,
    shown: Sequence[ShownMemory],
    edits: MemoryEdits,
    origin: Origin,
    limit: int,
    now: datetime,
) -> Changes:
    """Vet ``edits`` and apply what passes, on ``conn`` (inside the caller's transaction).

    Deletions first, then updates, then additions; each memory changes at most once.
    """
    try:
        hold_person_in(conn, user_id)  # serialised with turns writing their memories
    except UnknownUser:
        return Changes(rejected=["the user no longer exists"])
    run = _Apply(conn, store, user_id, origin, limit, now)
    by_number = {m.number: m for m in shown}
    for removed in edits.delete:
        if removed.id in by_number:
            run.delete(by_number[removed.id])
        else:
            run.refuse(f"delete #{removed.id}", "no memory shown has that number")
    for changed in edits.update:
        if changed.id in by_number:
            run.update(by_number[changed.id], changed.memory, changed.topics)
        else:
            run.refuse(f"update #{changed.id}", "no memory shown has that number")
    for new in edits.add:
        run.add(new.memory, new.topics, new.input)
    return run.changes
