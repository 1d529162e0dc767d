"""``ctx.user.memories``: a person's free-text memories as a bot's code sees them.

Inside a turn, writes are buffered like every other memory write (:class:`PendingMemories`,
kept in the turn's :class:`~runtime.memory.store.PendingWrites`) and committed with the
turn's replies, or dropped with them when the bot fails; reads see the turn's own writes.
Each write is checked when it is made (text, topics, unknown ids, the limit), so the bot
gets the error at the line that caused it, and the commit checks the limit again.

Who may write depends on the bot's ``user-memories`` option: ``manual`` (the default) lets
the bot's code write; ``agentic`` leaves writing to the model after each session and refuses
the code's writes (the two would fight over the same memories: the model rewrites what the
code wrote, the code re-adds what the model merged); ``off`` refuses reads and writes.
Operators (CLI, admin API) may write in every mode.

Example::

    note = await ctx.user.memories.add("Prefers concise answers.", topics=["style"])
    await ctx.user.memories.upsert(note.id, "Prefers concise answers, no preamble.")
    for m in await ctx.user.memories.list():
        print(m.id, m.memory, m.topics)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import MemoryDisabled, MemoryFull, UnknownMemory
from mnemobot.runtime.memories.record import (
    MAX_FEEDBACK_CHARS,
    MAX_INPUT_CHARS,
    MemoriesMode,
    Memory,
    Origin,
    check_id,
    check_ids,
    check_note,
    check_text,
    check_topics,
)
from mnemobot.runtime.memories.store import Change, MemoriesStore, missing_message
from mnemobot.runtime.memory.store import PendingWrites
from mnemobot.runtime.people.hold import hold_person_in
from mnemobot.runtime.storage.tables import new_id

__all__ = ["MemoriesView", "PendingMemories"]


@dataclass(frozen=True, slots=True)
class _Op:
    kind: Literal["add", "edit", "delete"]
    origin: Origin
    memory: Memory | None = None  # add, edit: the memory as it will be
    change: Change | None = None  # edit
    ids: tuple[str, ...] = ()  # delete


@dataclass
class PendingMemories:
    """One person's memory writes in one turn, applied at its commit (``DeferredWrites``)."""

    store: MemoriesStore
    user_id: str
    limit: int
    ops: list[_Op] = field(default_factory=list)

    def apply_in(self, conn: Connection, now: datetime) -> None:
        if not self.ops:
            return
        store, user_id = self.store, self.user_id
        hold_person_in(conn, user_id)
        added = False
        for op in self.ops:
            if op.kind == "add":
                assert op.memory is not None
                m = op.memory
                store.insert_in(
                    conn,
                    user_id,
                    m.text,
                    m.topics,
                    origin=op.origin,
                    now=now,
                    input=m.input,
                    feedback=m.feedback,
                    memory_id=m.id,
                )
                added = True
            elif op.kind == "edit":
                assert op.memory is not None and op.change is not None
                store.update_in(conn, user_id, op.memory.id, op.change, origin=op.origin, now=now)
            else:
                store.delete_in(conn, user_id, op.ids)
        if added:
            store.check_room_in(conn, user_id, self.limit)


def _mode_name(mode: MemoriesMode) -> str:
    return f"user-memories,{mode} in config.csv"


class MemoriesView:
    """A person's free-text memories for one bot in one turn (or, with no ``writes``, each
    call committed at once).

    Args:
        store: the memories' SQL.
        clock: the time of writes as this turn sees them.
        user_id: whose memories.
        mode: the bot's ``user-memories`` option (``off`` also when user memory is disabled).
        limit: most memories a person may hold (``user-memory-max-keys``).
        origin: the bot and session a write comes from.
        writes: the turn's pending writes; None to commit each write at once.
    """

    def __init__(
        self,
        store: MemoriesStore,
        clock: Clock,
        *,
        user_id: str,
        mode: MemoriesMode,
        limit: int,
        origin: Origin,
        writes: PendingWrites | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._user_id = user_id
        self._origin = origin
        self.mode: MemoriesMode = mode
        self.limit = limit
        self._pending: PendingMemories | None = None
        if writes is not None:
            slot = f"memories:{user_id}"
            found = writes.deferred.get(slot)
            if not isinstance(found, PendingMemories):
                found = PendingMemories(store, user_id, limit)
                writes.deferred[slot] = found
            found.limit = min(found.limit, limit)
            self._pending = found

    # -- reading ------------------------------------------------------------------------
    # (a person's memories are few enough to read whole: at most user-memory-max-keys)

    async def get(self, memory_id: str) -> Memory | None:
        """One memory by id, or None when the person has none with that id."""
        self._check_readable()
        return (await self._current()).get(check_id(memory_id))

    async def recent(self, count: int) -> list[Memory]:
        """The ``count`` most recently changed memories (this turn's writes included), oldest
        first: what a prompt reads, so its cost does not grow with the person's memories."""
        self._check_readable()
        state = await self._current(newest=count)
        newest = sorted(state.values(), key=lambda m: m.updated_at, reverse=True)[:count]
        return sorted(newest, key=lambda m: (m.created_at, m.id))

    async def _current(self, newest: int | None = None) -> dict[str, Memory]:
        stored = await self._store.db.run(self._store.list, self._user_id, newest)
        state = {m.id: m for m in stored}
        for op in self._pending.ops if self._pending is not None else ():
            if op.kind == "delete":
                for gone in op.ids:
                    state.pop(gone, None)
            else:
                assert op.memory is not None
                state[op.memory.id] = op.memory
        return state

    # -- writing ------------------------------------------------------------------------

    async def add(
        self,
        text: str,
        topics: Sequence[str] | None = None,
        input: str | None = None,
        feedback: str | None = None,
    ) -> Memory:
        """Remember ``text`` about the person; returns the memory with its new ``id``.

        Raises InvalidValue (empty or oversized text, topics not a list of strings),
        MemoryFull (the person's limit), MemoryDisabled (``off``/``agentic`` mode).
        """
        self._check_writable()
        clean = check_text(text)
        tags = check_topics(topics)
        source = check_note(input, "input", MAX_INPUT_CHARS)
        remark = check_note(feedback, "feedback", MAX_FEEDBACK_CHARS)
        now = self._clock.now()
        memory = Memory(
            new_id(),
            clean,
            tags,
            source,
            remark,
            now,
            now,
            self._origin.source,
            self._origin.bot,
            self._origin.session_id,
        )
        if self._pending is None:
            return await self._store.db.run(
                lambda: self._store.add(
                    self._user_id,
                    clean,
                    tags,
                    origin=self._origin,
                    limit=self.limit,
                    input=source,
                    feedback=remark,
                )
            )
        if len(await self._current()) + 1 > self.limit:
            raise MemoryFull(self.limit, "memories")
        self._pending.ops.append(_Op("add", self._origin, memory=memory))
        return memory

    async def upsert(
        self,
        memory_id: str,
        text: str,
        topics: Sequence[str] | None = None,
        input: str | None = None,
        feedback: str | None = None,
    ) -> Memory:
        """Edit the memory ``memory_id`` in place (topics, input, feedback: kept when not
        given). UnknownMemory, and nothing changed, when the person has no such memory."""
        self._check_writable()
        wanted = check_id(memory_id)
        change = Change(
            check_text(text),
            None if topics is None else check_topics(topics),
            check_note(input, "input", MAX_INPUT_CHARS),
            check_note(feedback, "feedback", MAX_FEEDBACK_CHARS),
        )
        if self._pending is None:
            return await self._store.db.run(
                lambda: self._store.edit(self._user_id, wanted, change, origin=self._origin)
            )
        old = (await self._current()).get(wanted)
        if old is None:
            raise UnknownMemory(missing_message(self._user_id, [wanted]))
        edited = replace(
            old,
            text=change.text,
            topics=old.topics if change.topics is None else change.topics,
            input=change.input or old.input,
            feedback=change.feedback or old.feedback,
            updated_at=self._clock.now(),
            source=self._origin.source,
            bot=self._origin.bot,
            session_id=self._origin.session_id,
        )
        self._pending.ops.append(_Op("edit", self._origin, memory=edited, change=change))
        return edited

    async def delete(self, memory_id: str) -> None:
        """Delete one memory; UnknownMemory when the person has no such memory."""
        await self.delete_many([memory_id])

    async def delete_many(self, memory_ids: Sequence[str]) -> int:
        """Delete several memories, all or none (UnknownMemory names the unknown ids)."""
        self._check_writable()
        ids = check_ids(memory_ids)
        if self._pending is None:
            return await self._store.db.run(self._store.delete, self._user_id, ids)
        current = await self._current()
        missing = [i for i in ids if i not in current]
        if missing:
            raise UnknownMemory(missing_message(self._user_id, missing))
        if ids:
            self._pending.ops.append(_Op("delete", self._origin, ids=tuple(ids)))
        return len(ids)

    # -- the bot's mode -----------------------------------------------------------------

    def _check_readable(self) -> None:
        if self.mode == "off":
            raise MemoryDisabled(
                f"user memories are off for this bot ({_mode_name('off')}, or "
                "user-memory-enabled,false); set user-memories to manual to use them"
            )

    def _check_writable(self) -> None:
        self._check_readable()
        if self.mode == "agentic":
            raise MemoryDisabled(
                f"user memories are written by the model after each session for this bot "
                f"({_mode_name('agentic')}); the bot's own writes are refused so the two never "
                "overwrite each other. Set user-memories to manual to write them in code"
            )

    # defined last: within the class body, later annotations would take ``list`` for it
    async def list(self) -> list[Memory]:
        """Every memory of the person, oldest first, this turn's writes included."""
        self._check_readable()
        return list((await self._current()).values())
