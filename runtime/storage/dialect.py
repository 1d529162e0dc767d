"""What differs between SQLite and PostgreSQL, said once, as capabilities and statement builders.

Only ``runtime/storage/`` knows which database is in use. A store asks its :class:`Database`
for ``db.dialect`` (or :func:`dialect_of` a connection) and branches on what it needs to know,
never on a name:

* :meth:`Dialect.insert` is the portable upsert: an ``INSERT`` with ``on_conflict_do_update`` /
  ``on_conflict_do_nothing`` (SQLAlchemy has one per dialect).
* :meth:`Dialect.lock_rows` adds ``FOR UPDATE`` where it means something (PostgreSQL); on SQLite
  a write transaction starts with ``BEGIN IMMEDIATE``, so writers queue on the whole database.
* :attr:`Dialect.row_locks`: whether taking row locks can serialise anything (a store skips a
  statement that only locks).
* :attr:`Dialect.advisory_locks`: named locks shared by every process on the database
  (PostgreSQL's ``pg_advisory_*``), for conversation, job and role locks.
* :attr:`Dialect.one_writer`: one write transaction at a time in the whole database (SQLite): a
  write transaction must not open a second one (it would wait on itself).
* :attr:`Dialect.one_process`: one runtime process owns the database (SQLite); nothing another
  worker holds (a send lease, a sweep) needs waiting for.
* :meth:`Dialect.next_in_sequence` and :meth:`Dialect.atomic_json` give the few SQL fragments
  that are spelled differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Select, Table, func, literal_column, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError

from mnemobot.runtime.errors import ConfigError

__all__ = ["POSTGRESQL", "SQLITE", "Dialect", "JsonMerge", "dialect_for", "dialect_of"]


@dataclass(frozen=True, slots=True)
class JsonMerge:
    """SQL fragments of an atomic JSON update (``increment``/``append``) as one upsert.

    ``fresh``: the value of a new row, from the ``:arg`` parameter (JSON text); ``merged``: the
    new value from the stored one (``{table}.value``) and ``:arg``; ``kind_ok``: true when the
    stored value is of the kind the operation needs (a number, an array).
    """

    fresh: str
    merged: str
    kind_ok: str


@dataclass(frozen=True, slots=True, eq=False)
class Dialect:
    """The capabilities of one database dialect (see the module docstring).

    There is one instance per dialect. Inside ``storage/`` it still equals its name
    (``db.dialect == "postgresql"``); outside, tests/test_architecture.py refuses that.
    """

    name: str  # for people (``mnemobot db upgrade`` prints it); never branch on it
    advisory_locks: bool
    row_locks: bool
    one_writer: bool
    one_process: bool

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, str) and other == self.name)

    def __hash__(self) -> int:
        return hash(self.name)

    def insert(self, table: Table) -> Any:
        """``INSERT`` into ``table`` with ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        return (postgresql.insert if self.name == "postgresql" else sqlite.insert)(table)

    def lock_rows(self, query: Select[Any], *, skip_locked: bool = False) -> Select[Any]:
        """``query ... FOR UPDATE [SKIP LOCKED]`` where row locks exist; ``query`` otherwise."""
        if not self.row_locks:
            return query
        return query.with_for_update(skip_locked=skip_locked)

    def next_in_sequence(self, sequence: str, table: str) -> ColumnElement[Any]:
        """The next number of an ever-growing sequence numbering ``table``'s rows.

        PostgreSQL: ``nextval(sequence)``. SQLite: one past the table's largest rowid, exact
        because writers queue (``BEGIN IMMEDIATE``) and a lookup on the rowid's b-tree.
        """
        if self.name == "postgresql":
            return func.nextval(sequence)
        return literal_column(f"(SELECT coalesce(max(rowid), 0) + 1 FROM {table})")

    def atomic_json(self, op: Literal["increment", "append"], table: str) -> JsonMerge:
        """The fragments that add a number to a stored JSON number, or append to an array."""
        t = table
        if self.name == "postgresql":
            if op == "increment":
                return JsonMerge(
                    fresh="to_jsonb(CAST(:arg AS numeric))",
                    merged=(
                        f"to_jsonb(CAST({t}.value #>> '{{}}' AS numeric) + CAST(:arg AS numeric))"
                    ),
                    kind_ok=f"jsonb_typeof({t}.value) = 'number'",
                )
            return JsonMerge(
                fresh="jsonb_build_array(CAST(:arg AS jsonb))",
                merged=f"{t}.value || jsonb_build_array(CAST(:arg AS jsonb))",
                kind_ok=f"jsonb_typeof({t}.value) = 'array'",
            )
        if op == "increment":
            return JsonMerge(
                fresh="json(:arg)",
                merged=f"json_quote(json_extract({t}.value, '$') + json_extract(:arg, '$'))",
                kind_ok=f"json_type({t}.value) IN ('integer', 'real')",
            )
        return JsonMerge(
            fresh="json_array(json(:arg))",
            merged=f"json_insert({t}.value, '$[#]', json(:arg))",
            kind_ok=f"json_type({t}.value) = 'array'",
        )


SQLITE = Dialect("sqlite", advisory_locks=False, row_locks=False, one_writer=True, one_process=True)
POSTGRESQL = Dialect(
    "postgresql", advisory_locks=True, row_locks=True, one_writer=False, one_process=False
)
_BY_NAME = {d.name: d for d in (SQLITE, POSTGRESQL)}


def _named(name: str) -> Dialect:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"unsupported database {name!r} (database.url): use sqlite:///PATH or"
            " postgresql://USER@HOST/DB"
        ) from None


def dialect_for(url: str) -> Dialect:
    """The dialect of a SQLAlchemy URL; ConfigError (saying which URLs work) for any other."""
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            "database.url is not a database URL (not shown: it may hold a password); use"
            " sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    return _named(backend)


def dialect_of(conn: Connection) -> Dialect:
    """The dialect of an open connection (for code handed a connection, not the database)."""
    return _named(conn.dialect.name)
