"""Hot Core statements, compiled once and run straight on the driver's cursor.

Why: ``Connection.execute`` spends ~50 us per call above the driver (cache-key lookup,
execution context, events, a ``CursorResult``), more than a whole SQLite upsert takes. A turn's
hot path runs a few fixed statements with scalar parameters, and needs none of that. A
:class:`Prepared` keeps the statement a Core construct built once, lets SQLAlchemy compile it
for the connection's dialect (the same SQL text, and the same bind and result processing
``execute`` applies), and skips only the per-call layers. Driver errors are wrapped as
SQLAlchemy's (``IntegrityError``, ``OperationalError``...), so callers and
``Database.errors()`` see what ``execute`` would raise, and ``before_cursor_execute``
listeners still see each statement. Not kept, knowingly: engine echo logging and the other
execution events for these statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.expression import Executable

__all__ = ["Prepared"]

FEW_ROWS = 2  # execute_many runs one execute per row up to this many (see Prepared._call)

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled for one dialect: what each execution needs, swapped in whole so
    threads running the statement never see half of one dialect and half of another."""

    dialect: Dialect
    sql: str
    binds: list[tuple[str, _Processor]]  # the binds each call fills, with their processing
    fixed: dict[str, Any]  # binds with a value of their own (``.values(status="pending")``)
    order: list[str] | None  # positional drivers (SQLite): the binds' order; None: by name
    results: list[_Processor] | None  # None when no column needs processing
    dbapi_error: type[Exception]

    def args(self, params: Mapping[str, Any]) -> Any:
        values = {
            name: params[name] if process is None else process(params[name])
            for name, process in self.binds
        }
        if self.fixed:
            values.update(self.fixed)
        return values if self.order is None else tuple([values[name] for name in self.order])

    def rows(self, raw: Sequence[Any]) -> list[tuple[Any, ...]]:
        results = self.results
        if results is None:
            return [tuple(row) for row in raw]
        return [
            tuple(
                [
                    value if process is None else process(value)
                    for value, process in zip(row, results, strict=False)
                ]
            )
            for row in raw
        ]


class Prepared:
    """One Core statement, compiled on first use per dialect, executed on the DBAPI cursor.

    Args:
        statement: a Core statement with plain (not expanding) bound parameters.
    """

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: _Compiled | None = None

    def _for(self, conn: Connection) -> _Compiled:
        compiled = self._compiled
        dialect = conn.dialect
        if compiled is None or compiled.dialect is not dialect:
            compiled = self._compiled = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise TypeError("Prepared takes statements without expanding or literal parameters")
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(self.statement, "exported_columns", ())
        ]
        return _Compiled(
            dialect=dialect,
            sql=compiled.string,
            binds=[
                (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
                for name, bind in compiled.binds.items()
                if bind.required
            ],
            order=list(compiled.positiontup) if compiled.positional else None,
            results=results if any(results) else None,
            dbapi_error=dialect.loaded_dbapi.Error,
            fixed={
                name: _processed(bind, dialect)
                for name, bind in compiled.binds.items()
                if not bind.required
            },
        )

    def first(
        self, conn: Connection, params: Mapping[str, Any], *, autobegin: bool = True
    ) -> tuple[Any, ...] | None:
        """The first row, processed as ``conn.execute(statement, params).first()`` would.

        It runs in ``conn``'s transaction, begun first when there is none (as ``execute``
        does); ``autobegin=False`` runs it outside any, as the driver does (SQLite: a
        statement of its own; see Database.read_one).
        """
        rows: list[tuple[Any, ...]] = self._call(conn, params, autobegin=autobegin, fetch="one")
        return rows[0] if rows else None

    def all(
        self, conn: Connection, params: Mapping[str, Any], *, autobegin: bool = True
    ) -> list[tuple[Any, ...]]:
        """Every row, processed as ``conn.execute(statement, params).all()`` would."""
        rows: list[tuple[Any, ...]] = self._call(conn, params, autobegin=autobegin, fetch="all")
        return rows

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows, in ``conn``'s transaction; its rowcount."""
        return int(self._call(conn, params, autobegin=True, fetch="rowcount"))

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement that returns no rows once per parameter set (``executemany``)."""
        if rows:
            self._call(conn, rows, autobegin=True, fetch="many")

    def _call(self, conn: Connection, params: Any, *, autobegin: bool, fetch: str) -> Any:
        """Execute on a cursor of ``conn``'s driver connection; what ``fetch`` asks for:
        ``one``/``all`` rows, the ``rowcount``, or nothing for ``many`` (executemany)."""
        compiled = self._for(conn)
        if autobegin and not conn.in_transaction():
            conn.begin()
        many = fetch == "many"
        args = [compiled.args(row) for row in params] if many else compiled.args(params)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            _announce(conn, cursor, compiled.sql, args, many=many)
            if many:
                if len(args) > FEW_ROWS:
                    cursor.executemany(compiled.sql, args)
                else:  # psycopg's executemany sets up a pipeline: dearer for a row or two
                    for row in args:
                        cursor.execute(compiled.sql, row)
                return None
            cursor.execute(compiled.sql, args)
            if fetch == "rowcount":
                return cursor.rowcount
            if not cursor.description:
                raw: Sequence[Any] = []
            elif fetch == "one":
                one = cursor.fetchone()
                raw = [] if one is None else [one]
            else:
                raw = cursor.fetchall()
        except compiled.dbapi_error as exc:
            raise _wrapped(exc, compiled, args, conn, cursor) from exc
        finally:
            cursor.close()
        return compiled.rows(raw)


def _processed(bind: Any, dialect: Dialect) -> Any:
    process = bind.type.dialect_impl(dialect).bind_processor(dialect)
    value = bind.effective_value
    return value if process is None else process(value)


def _wrapped(
    exc: Exception, compiled: _Compiled, args: Any, conn: Connection, cursor: Any
) -> StatementError:
    """The driver's error as SQLAlchemy would raise it from ``execute``.

    A lost connection is handled as ``execute`` would too: this one is invalidated, and so
    are the others pooled with it (a restarted server lost them all), so the next checkout
    connects afresh instead of failing once per stale connection.
    """
    dialect = compiled.dialect
    gone = dialect.is_disconnect(exc, conn.connection.driver_connection, cursor)  # type: ignore[arg-type]
    if gone and not conn.invalidated:  # what Connection._handle_dbapi_exception does
        conn.engine.pool._invalidate(conn.connection, exc)
        conn.invalidate(exc)
    return DBAPIError.instance(
        compiled.sql,
        args,
        exc,
        compiled.dbapi_error,
        dialect=dialect,
        connection_invalidated=gone,
    )


def _announce(conn: Connection, cursor: Any, sql: str, args: Any, *, many: bool) -> None:
    """Fire ``before_cursor_execute`` when someone listens (a bench counting statements, a
    tracer), as ``execute`` would; one attribute check when nobody does."""
    if conn._has_events or conn.engine._has_events:
        listeners = conn.dispatch.before_cursor_execute
        if listeners:
            listeners(conn, cursor, sql, args, None, many)
