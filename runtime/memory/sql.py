"""The SQL behind every key-value scope, on SQLAlchemy Core with statements built once.

User memory, bot memory and session memory are the same shape: an owner (a user, a bot, a
session and kind), a key, a JSON value. :class:`KeyValueSQL` builds the statements for one
such table and one dialect at start-up, so a hot call only binds parameters and executes; the
hottest (get, set, increment, append) are :class:`Prepared`, compiled once and run on the
driver's cursor without ``Connection.execute``'s per-call layers (see bench/memory_ops.py).
``increment`` and ``append`` are single upserts that compute the new value inside the
database, so concurrent writers never lose an update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Connection,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    null,
    or_,
    select,
    text,
)

from mnemobot.runtime.errors import InvalidValue
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.dialect import Dialect
from mnemobot.runtime.storage.prepared import Prepared
from mnemobot.runtime.storage.tables import new_id

__all__ = ["MISSING", "KeyValueSQL", "StoredValue"]


class _Missing:
    """The sentinel for "no such key" (JSON null is a value, so None cannot be it)."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One row as the memory API reports it."""

    key: str
    value: Any
    memory_type: str | None
    ttl: datetime | None
    created_at: datetime | None
    updated_at: datetime


class KeyValueSQL:
    """Prebuilt statements for one key-value table on one dialect.

    Args:
        table: the SQLAlchemy table (user_memory, bot_memory or session_memory).
        owner: the columns that name the owner, e.g. ``("user_id",)`` or ``("session_id", "kind")``.
        dialect: the database's (``Database.dialect``).
    """

    def __init__(
        self, table: Table, owner: tuple[str, ...], dialect: Dialect, extra: tuple[str, ...] = ()
    ) -> None:
        self.table = table
        self.owner = owner
        self.extra = extra  # columns written on insert but not part of the owner match
        self.dialect = dialect
        c = table.c
        self.has_ttl = "ttl" in c
        self.has_type = "memory_type" in c
        self.has_created = "created_at" in c
        owner_match = and_(*(c[name] == bindparam(name) for name in owner))
        live = or_(c.ttl.is_(None), c.ttl > bindparam("now")) if self.has_ttl else None
        where = and_(owner_match, c.key == bindparam("key"))
        live_where = and_(where, live) if live is not None else where
        owner_live = and_(owner_match, live) if live is not None else owner_match

        self._get = Prepared(select(c.value).where(live_where))
        absent = null().label  # same column order for every table, so rows unpack by position
        listing = select(
            c.key,
            c.value,
            c.memory_type if self.has_type else absent("memory_type"),
            c.ttl if self.has_ttl else absent("ttl"),
            c.created_at if self.has_created else absent("created_at"),
            c.updated_at,
        ).where(owner_live)
        self._newest = Prepared(
            listing.order_by(c.updated_at.desc(), c.key).limit(bindparam("limit"))
        )
        self._list = Prepared(listing.order_by(c.key))
        self._count = select(func.count()).select_from(table).where(owner_live)
        self._delete = delete(table).where(where)
        self._upsert = Prepared(self._build_upsert())
        self._increment = Prepared(self._build_atomic("increment"))
        self._append = Prepared(self._build_atomic("append"))

    # -- statement builders -------------------------------------------------------------

    def _insert_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"id": bindparam("id"), "key": bindparam("key")}
        values.update({name: bindparam(name) for name in (*self.owner, *self.extra)})
        values["value"] = bindparam("value", type_=self.table.c.value.type)
        stamp = self.table.c.updated_at.type
        values["updated_at"] = bindparam("now", type_=stamp)
        if self.has_created:
            values["created_at"] = bindparam("now", type_=stamp)
        if self.has_type:  # None: a new key is a preference, a rewrite keeps its type
            values["memory_type"] = func.coalesce(bindparam("memory_type"), "preference")
        if self.has_ttl:
            values["ttl"] = bindparam("ttl", type_=stamp)
        return values

    def _build_upsert(self) -> Any:
        stmt = self.dialect.insert(self.table).values(**self._insert_values())
        updates = {"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        if self.has_type:
            updates["memory_type"] = func.coalesce(
                bindparam("memory_type"), self.table.c.memory_type
            )
        if self.has_ttl:
            updates["ttl"] = stmt.excluded.ttl
        return stmt.on_conflict_do_update(
            index_elements=[*self.owner, "key"], set_=updates
        ).returning(self.table.c.id)

    def _build_atomic(self, op: Literal["increment", "append"]) -> Any:
        """``increment``/``append`` as one upsert; the WHERE refuses a value of the wrong kind."""
        t = self.table.name
        cols = ["id", *self.owner, *self.extra, "key", "value", "updated_at"]
        vals = [":id", *(f":{o}" for o in (*self.owner, *self.extra)), ":key", "{fresh}", ":now"]
        sets = ["value = {merged}", "updated_at = excluded.updated_at"]
        if self.has_created:
            cols.append("created_at")
            vals.append(":now")
        if self.has_type:  # a new row; an existing one keeps its type
            cols.append("memory_type")
            vals.append("coalesce(:memory_type, 'preference')")
        if self.has_ttl:
            cols.append("ttl")
            vals.append(":ttl")
            sets.append("ttl = excluded.ttl")
        expired = (
            f"({t}.ttl IS NOT NULL AND {t}.ttl <= excluded.updated_at)" if self.has_ttl else "FALSE"
        )
        json_op = self.dialect.atomic_json(op, t)
        fresh, merged, kind_ok = json_op.fresh, json_op.merged, json_op.kind_ok
        if self.has_ttl:
            merged = f"CASE WHEN {expired} THEN {fresh} ELSE {merged} END"
            kind_ok = f"({expired} OR {kind_ok})"
        sql = (
            f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(vals)}) "
            f"ON CONFLICT ({', '.join([*self.owner, 'key'])}) DO UPDATE SET {', '.join(sets)} "
            f"WHERE {kind_ok} RETURNING id, value"
        ).format(fresh=fresh, merged=merged)
        stamp = self.table.c.updated_at.type
        params = [bindparam("now", type_=stamp), bindparam("arg", type_=String())]
        if self.has_ttl:
            params.append(bindparam("ttl", type_=stamp))
        return text(sql).bindparams(*params).columns(id=String(), value=JSON())

    # -- operations ---------------------------------------------------------------------

    def get(self, conn: Connection, owner: dict[str, Any], key: str, now: datetime) -> Any:
        """The stored value, or the module's ``_MISSING`` sentinel (JSON null is a value)."""
        row = self._get.first(conn, {**owner, "key": key, "now": now})
        return _MISSING if row is None else row[0]

    def read(self, db: Database, owner: dict[str, Any], key: str, now: datetime) -> Any:
        """Like :meth:`get`, as a read of its own (on SQLite without BEGIN/ROLLBACK around it,
        which would cost as much as the SELECT; see Database.read_one)."""
        row = db.read_one(self._get, {**owner, "key": key, "now": now})
        return _MISSING if row is None else row[0]

    def rows(
        self, conn: Connection, owner: dict[str, Any], now: datetime, newest: int | None = None
    ) -> list[StoredValue]:
        """Live rows by key, or only the ``newest`` most recently written ones."""
        statement, params = self._rows_query(owner, now, newest)
        return [StoredValue(*row) for row in statement.all(conn, params)]

    def read_rows(
        self, db: Database, owner: dict[str, Any], now: datetime, newest: int | None = None
    ) -> list[StoredValue]:
        """Like :meth:`rows`, as a read of its own (see Database.read_all)."""
        statement, params = self._rows_query(owner, now, newest)
        return [StoredValue(*row) for row in db.read_all(statement, params)]

    def _rows_query(
        self, owner: dict[str, Any], now: datetime, newest: int | None
    ) -> tuple[Prepared, dict[str, Any]]:
        if newest is None:
            return self._list, {**owner, "now": now}
        return self._newest, {**owner, "now": now, "limit": newest}

    def count(self, conn: Connection, owner: dict[str, Any], now: datetime) -> int:
        return int(conn.execute(self._count, {**owner, "now": now}).scalar_one())

    def set(
        self,
        conn: Connection,
        owner: dict[str, Any],
        key: str,
        value: Any,
        now: datetime,
        *,
        memory_type: str | None = None,
        ttl: datetime | None = None,
    ) -> bool:
        """Insert or replace; True when a new row was created (the max-keys check needs it)."""
        row_id = new_id()
        params: dict[str, Any] = {**owner, "id": row_id, "key": key, "value": value, "now": now}
        if self.has_type:
            params["memory_type"] = memory_type
        if self.has_ttl:
            params["ttl"] = ttl
        row = self._upsert.first(conn, params)
        assert row is not None  # an upsert always returns its row
        return bool(row[0] == row_id)

    def delete(self, conn: Connection, owner: dict[str, Any], key: str) -> bool:
        return bool(conn.execute(self._delete, {**owner, "key": key}).rowcount)

    def increment(
        self,
        conn: Connection,
        owner: dict[str, Any],
        key: str,
        by: int | float,
        now: datetime,
        *,
        memory_type: str | None = None,
        ttl: datetime | None = None,
    ) -> tuple[int | float, bool]:
        """Add ``by`` to a numeric value (a missing key counts as 0); atomic.

        Returns the new value and whether the key was created.
        """
        args = (conn, owner, key, json.dumps(by), now, memory_type, ttl)
        result, created = self._atomic(self._increment, *args)
        if result is _MISSING:
            raise InvalidValue(f"cannot increment {key!r}: it holds a value that is not a number")
        assert isinstance(result, (int, float))
        return result, created

    def append(
        self,
        conn: Connection,
        owner: dict[str, Any],
        key: str,
        item_json: str,
        now: datetime,
        *,
        memory_type: str | None = None,
        ttl: datetime | None = None,
    ) -> tuple[list[Any], bool]:
        """Append one item (given as JSON text) to a list (a missing key starts one); atomic."""
        args = (conn, owner, key, item_json, now, memory_type, ttl)
        result, created = self._atomic(self._append, *args)
        if result is _MISSING:
            raise InvalidValue(f"cannot append to {key!r}: it holds a value that is not a list")
        assert isinstance(result, list)
        return result, created

    def _atomic(
        self,
        stmt: Prepared,
        conn: Connection,
        owner: dict[str, Any],
        key: str,
        arg: str,
        now: datetime,
        memory_type: str | None,
        ttl: datetime | None,
    ) -> tuple[Any, bool]:
        row_id = new_id()
        params: dict[str, Any] = {**owner, "id": row_id, "key": key, "arg": arg, "now": now}
        if self.has_type:
            params["memory_type"] = memory_type
        if self.has_ttl:
            params["ttl"] = ttl
        row = stmt.first(conn, params)
        return (_MISSING, False) if row is None else (row[1], row[0] == row_id)


MISSING: Any = _MISSING
