"""Memory for every scope behind one interface, :class:`MemoryScope`.

A scope is used in one of two ways:

* **direct** (CLI, admin, benchmarks): each call is its own short transaction;
* **in a turn** (a bot handling a message): writes are buffered in :class:`PendingWrites`
  and applied by the runtime in the one transaction that also stores the turn log, the
  replies and the inbox row. Reads inside the turn see the turn's own writes. Nothing is
  written if the turn fails, and no database lock is held while the bot waits on an LLM.

``append`` is applied at commit as a single atomic upsert, so lists shared by many
conversations lose no update; the value it returns inside a turn is the value as this turn
sees it.

``increment`` on user and bot memory is the exception: it is committed at once, in a short
transaction of its own (one atomic upsert ``... RETURNING``), and returns the committed value.
A bot may hand that value out as a ticket or order number, so it must be unique across every
worker, and only the database can say which value this call got; waiting for the turn's
commit would mean holding a row lock while the bot waits on a model. Like a database sequence,
an increment is therefore not rolled back when the turn fails: a failed turn leaves a gap in
the numbers, never a duplicate (taking the number back would hand it out twice once another
turn has incremented past it). This turn's earlier writes to the same key go with it, so the
order of its writes holds. Session memory belongs to one conversation, whose turns run one at
a time, so its increments stay in the turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, bindparam, select

from mnemobot.runtime.clock import Clock
from mnemobot.runtime.errors import InvalidValue, MemoryDisabled, MemoryFull
from mnemobot.runtime.memory.policy import UserMemoryPolicy
from mnemobot.runtime.memory.sql import MISSING, KeyValueSQL, StoredValue
from mnemobot.runtime.memory.values import MemoryType, check_key, check_value, memory_type_for
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.tables import (
    BOT_MEMORY,
    SESSION_MEMORY,
    USER_MEMORY,
    USERS,
)

__all__ = [
    "DeferredWrites",
    "MemoryScope",
    "MemoryStore",
    "PendingWrites",
    "ScopeName",
    "ScopeRef",
    "SessionKind",
]

OpKind = Literal["set", "delete", "increment", "append"]
ScopeName = Literal["user", "bot", "session", "context", "temp"]
# session rows: a bot's, SET CONTEXT, ours, and temp (one dialog or flow: Botpress's ``temp``)
SessionKind = Literal["memory", "context", "runtime", "temp"]
_COMMITTED_AT_ONCE: tuple[ScopeName, ...] = ("user", "bot")  # increments commit at once (above)


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """Which table and which owner a scope reads and writes (equal when those are equal)."""

    name: ScopeName
    owner: tuple[tuple[str, Any], ...]
    kv: KeyValueSQL = field(compare=False)
    insert_extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    user_id: str | None = field(default=None, compare=False)  # user memory: limits, locking
    policy: UserMemoryPolicy | None = field(default=None, compare=False)

    @property
    def owner_params(self) -> dict[str, Any]:
        return dict(self.owner) | dict(self.insert_extra)


@dataclass(slots=True)
class _Op:
    kind: OpKind
    key: str
    value: Any = None
    json_text: str = ""
    memory_type: MemoryType | None = None
    ttl: datetime | None = None


class DeferredWrites(Protocol):
    """A scope's own buffered writes that are not key/value (free-text memories): applied
    in the turn's transaction after the key/value writes, or dropped with them."""

    def apply_in(self, conn: Connection, now: datetime) -> None: ...


@dataclass
class PendingWrites:
    """The writes a turn has made so far, in order, with what it has read."""

    ops: list[tuple[ScopeRef, _Op]] = field(default_factory=list)
    reads: dict[tuple[ScopeRef, str], Any] = field(default_factory=dict)
    counts: dict[ScopeRef, int] = field(default_factory=dict)
    deferred: dict[str, DeferredWrites] = field(default_factory=dict)  # by scope and owner

    def pending_for(self, ref: ScopeRef, key: str) -> list[_Op]:
        return [op for r, op in self.ops if r == ref and op.key == key]

    def pending_keys(self, ref: ScopeRef) -> list[str]:
        seen: dict[str, None] = {}
        for r, op in self.ops:
            if r == ref:
                seen[op.key] = None
        return list(seen)

    def clear(self) -> None:
        self.ops.clear()
        self.reads.clear()
        self.counts.clear()
        self.deferred.clear()


def _apply_local(value: Any, op: _Op) -> Any:
    """What ``op`` does to ``value`` (MISSING for no value), computed in Python."""
    if op.kind == "set":
        return op.value
    if op.kind == "delete":
        return MISSING
    if op.kind == "increment":
        base = 0 if value is MISSING else value
        if isinstance(base, bool) or not isinstance(base, (int, float)):
            raise InvalidValue(
                f"cannot increment {op.key!r}: it holds a value that is not a number"
            )
        return base + op.value
    base_list = [] if value is MISSING else value
    if not isinstance(base_list, list):
        raise InvalidValue(f"cannot append to {op.key!r}: it holds a value that is not a list")
    return [*base_list, op.value]


class MemoryStore:
    """The SQL of every memory scope on one database, and the commit of a turn's writes."""

    def __init__(self, db: Database, clock: Clock, *, max_value_bytes: int = 65536) -> None:
        self.db = db
        self.clock = clock
        self.max_value_bytes = max_value_bytes
        dialect = db.dialect
        self.user_sql = KeyValueSQL(USER_MEMORY, ("user_id",), dialect)
        self.bot_sql = KeyValueSQL(BOT_MEMORY, ("bot",), dialect)
        self.session_sql = KeyValueSQL(
            SESSION_MEMORY,
            ("session_id", "kind"),
            dialect,
            extra=("user_id",),
        )
        users = USERS.c
        self._lock_user = (
            select(users.id).where(users.id == bindparam("lock_user")).with_for_update()
        )

    # -- scope references ---------------------------------------------------------------

    def user_ref(self, user_id: str, policy: UserMemoryPolicy) -> ScopeRef:
        owner = (("user_id", user_id),)
        return ScopeRef("user", owner, self.user_sql, user_id=user_id, policy=policy)

    def bot_ref(self, bot: str) -> ScopeRef:
        return ScopeRef("bot", (("bot", bot),), self.bot_sql)

    def session_ref(self, session_id: str, user_id: str, kind: SessionKind = "memory") -> ScopeRef:
        return ScopeRef(
            kind if kind in ("context", "temp") else "session",
            (("session_id", session_id), ("kind", kind)),
            self.session_sql,
            insert_extra=(("user_id", user_id),),
        )

    # -- reads (run through Database.run) -----------------------------------------------

    def read_value(self, ref: ScopeRef, key: str) -> Any:
        return ref.kv.read(self.db, dict(ref.owner), key, self.clock.now())

    def read_rows(self, ref: ScopeRef, newest: int | None = None) -> list[StoredValue]:
        return ref.kv.read_rows(self.db, dict(ref.owner), self.clock.now(), newest)

    def read_count(self, ref: ScopeRef) -> int:
        with self.db.read() as conn:
            return ref.kv.count(conn, dict(ref.owner), self.clock.now())

    # -- writes --------------------------------------------------------------------------

    def apply(self, conn: Connection, writes: PendingWrites, now: datetime) -> list[Any]:
        """Apply a turn's writes on ``conn`` (inside the caller's transaction), in order.

        Raises MemoryFull (the caller rolls back) when a user's live keys exceed the limit
        after this turn created new ones. Returns each op's resulting value.
        """
        if self.db.dialect.row_locks:
            for user_id in sorted({r.user_id for r, _ in writes.ops if r.user_id}):
                conn.execute(self._lock_user, {"lock_user": user_id})
        created: dict[ScopeRef, int] = {}
        results: list[Any] = []
        for ref, op in writes.ops:
            owner = ref.owner_params
            if op.kind == "delete":
                ref.kv.delete(conn, dict(ref.owner), op.key)
                results.append(MISSING)
                continue
            extra: dict[str, Any] = {}
            if ref.kv.has_type:
                extra["memory_type"] = op.memory_type
            if ref.kv.has_ttl:
                extra["ttl"] = op.ttl
            if op.kind == "set":
                was_new = ref.kv.set(conn, owner, op.key, op.value, now, **extra)
                result: Any = op.value
            elif op.kind == "increment":
                result, was_new = ref.kv.increment(conn, owner, op.key, op.value, now, **extra)
            else:
                result, was_new = ref.kv.append(conn, owner, op.key, op.json_text, now, **extra)
            results.append(result)
            if was_new and ref.policy is not None:
                created[ref] = created.get(ref, 0) + 1
        for ref in created:
            assert ref.policy is not None
            if ref.kv.count(conn, dict(ref.owner), now) > ref.policy.max_keys:
                raise MemoryFull(ref.policy.max_keys)
        for deferred in writes.deferred.values():
            deferred.apply_in(conn, now)
        return results

    def commit(self, writes: PendingWrites) -> list[Any]:
        """Apply ``writes`` in a transaction of their own (direct use, outside a turn)."""
        with self.db.write() as conn:
            return self.apply(conn, writes, self.clock.now())


class MemoryScope:
    """One memory scope as bots and tools see it; see the module docstring for the modes.

    Args:
        store: the memory store.
        ref: which table and owner.
        writes: the turn's pending writes, or None to commit each call at once.
    """

    def __init__(self, store: MemoryStore, ref: ScopeRef, writes: PendingWrites | None = None):
        self._store = store
        self._ref = ref
        self._writes = writes

    @property
    def name(self) -> ScopeName:
        return self._ref.name

    # -- reading ------------------------------------------------------------------------

    async def _base(self, key: str) -> Any:
        if self._writes is None:
            return await self._store.db.run(self._store.read_value, self._ref, key)
        cache_key = (self._ref, key)
        if cache_key not in self._writes.reads:
            value = await self._store.db.run(self._store.read_value, self._ref, key)
            self._writes.reads[cache_key] = value
        return self._writes.reads[cache_key]

    async def _current(self, key: str) -> Any:
        value = await self._base(key)
        if self._writes is not None:
            for op in self._writes.pending_for(self._ref, key):
                value = _apply_local(value, op)
        return value

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when there is none (or it expired)."""
        self._check_enabled()
        value = await self._current(check_key(key))
        return default if value is MISSING else value

    async def rows(self, newest: int | None = None) -> list[StoredValue]:
        """Every live key with its metadata, as this turn sees them (pending writes included).

        ``newest`` limits the stored rows read to the most recently written ones (the prompt
        uses it so its cost does not grow with the size of memory); this turn's own writes
        are always included.
        """
        self._check_enabled()
        stored = await self._store.db.run(self._store.read_rows, self._ref, newest)
        rows = {r.key: r for r in stored}
        if self._writes is not None:
            now = self._store.clock.now()
            for key in self._writes.pending_keys(self._ref):
                value = await self._current(key)
                if value is MISSING:
                    rows.pop(key, None)
                    continue
                pending = self._writes.pending_for(self._ref, key)
                last, old = pending[-1], rows.get(key)
                rows[key] = StoredValue(
                    key=key,
                    value=value,
                    memory_type=_pending_type(pending)
                    or (old.memory_type if old else "preference"),
                    ttl=last.ttl,
                    created_at=old.created_at if old else now,
                    updated_at=now,
                )
        return [rows[k] for k in sorted(rows)]

    async def items(self) -> dict[str, Any]:
        """Every live key and value."""
        return {r.key: r.value for r in await self.rows()}

    # -- writing ------------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, *, ttl: float | None = None, memory_type: str | None = None
    ) -> None:
        """Store ``value`` (any JSON value) under ``key``; ``""`` deletes the key.

        Args:
            ttl: seconds until the value expires (user memory only); overrides the defaults.
            memory_type: preference, fact or context (user memory only); by default from the
                key's prefix (``fact_``, ``ctx_``, ``pref_``), else preference.
        """
        check_key(key)
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 <= ttl < 1e10
        ):
            raise InvalidValue(f"ttl must be a number of seconds >= 0 (0 = never), got {ttl!r}")
        if isinstance(value, str) and value == "":
            await self.delete(key)
            return
        self._check_enabled()
        text = check_value(value, self._max_bytes())
        op = _Op("set", key, json.loads(text), text)
        await self._add(op, ttl, memory_type)

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        self._check_enabled()
        await self._add(_Op("delete", check_key(key)), None, None)

    async def clear(self) -> None:
        """Remove every key of the scope (temp memory, when its dialog or flow ends)."""
        for row in await self.rows():
            await self.delete(row.key)

    async def increment(self, key: str, by: int | float = 1) -> int | float:
        """Add ``by`` to a number (a missing key counts as 0) without losing concurrent updates."""
        self._check_enabled()
        if isinstance(by, bool) or not isinstance(by, (int, float)):
            raise InvalidValue(f"increment needs a number, got {type(by).__name__}")
        check_value(by, self._max_bytes())
        result = await self._add(_Op("increment", check_key(key), by), None, None)
        assert isinstance(result, (int, float))
        return result

    async def append(self, key: str, item: Any) -> list[Any]:
        """Add ``item`` at the end of a list (a missing key starts one) atomically."""
        self._check_enabled()
        text = check_value(item, self._max_bytes())
        result = await self._add(_Op("append", check_key(key), json.loads(text), text), None, None)
        check_value(result, self._max_bytes())
        assert isinstance(result, list)
        return result

    async def _add(self, op: _Op, ttl: float | None, memory_type: str | None) -> Any:
        now = self._store.clock.now()
        if self._ref.policy is not None and op.kind != "delete":
            op.memory_type = memory_type_for(op.key, memory_type)
            op.ttl = self._ref.policy.expiry(op.key, ttl, now)
        if self._writes is None:
            pending = PendingWrites(ops=[(self._ref, op)])
            results = await self._store.db.run(self._store.commit, pending)
            return results[0]
        if op.kind == "increment" and self._ref.name in _COMMITTED_AT_ONCE:
            return await self._commit_now(op)
        before = await self._current(op.key)
        after = _apply_local(before, op)
        if op.kind == "append":
            check_value(after, self._max_bytes())
        if before is MISSING and after is not MISSING:
            await self._check_room()
        self._writes.ops.append((self._ref, op))
        return after

    async def _commit_now(self, op: _Op) -> Any:
        """Commit ``op`` (and this turn's earlier writes to its key) now; the stored result."""
        assert self._writes is not None
        writes = self._writes
        before = await self._current(op.key)
        _apply_local(before, op)  # a clear error before anything is written
        if before is MISSING:
            await self._check_room()
        earlier = [(r, o) for r, o in writes.ops if r == self._ref and o.key == op.key]
        pending = PendingWrites(ops=[*earlier, (self._ref, op)])
        results = await self._store.db.run(self._store.commit, pending)
        writes.ops[:] = [(r, o) for r, o in writes.ops if not (r == self._ref and o.key == op.key)]
        base = writes.reads.get((self._ref, op.key), MISSING)
        writes.reads[(self._ref, op.key)] = results[-1]
        if self._ref in writes.counts and base is MISSING:
            writes.counts[self._ref] += 1  # the key now exists in the database
        return results[-1]

    async def _check_room(self) -> None:
        """Refuse a new key early when the turn would pass the limit (commit checks again)."""
        policy = self._ref.policy
        if policy is None or self._writes is None:
            return
        if self._ref not in self._writes.counts:
            count = await self._store.db.run(self._store.read_count, self._ref)
            self._writes.counts[self._ref] = count
        live = self._writes.counts[self._ref]
        for key in self._writes.pending_keys(self._ref):
            base = self._writes.reads.get((self._ref, key), MISSING)
            now_value = await self._current(key)
            live += (now_value is not MISSING) - (base is not MISSING)
        if live + 1 > policy.max_keys:
            raise MemoryFull(policy.max_keys)

    def _check_enabled(self) -> None:
        policy = self._ref.policy
        if policy is not None and not policy.enabled:
            raise MemoryDisabled(
                "user memory is disabled for this bot (user-memory-enabled,false in config.csv)"
            )

    def _max_bytes(self) -> int:
        policy = self._ref.policy
        return policy.max_value_bytes if policy is not None else self._store.max_value_bytes


def _pending_type(pending: list[_Op]) -> str | None:
    """The type this turn's writes give a key: the newest one that names it, back to a delete
    (a write that names none keeps the type it had; None: the stored one)."""
    for op in reversed(pending):
        if op.kind == "delete":
            return "preference"
        if op.memory_type is not None:
            return op.memory_type
    return None
