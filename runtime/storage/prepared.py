"""Hot Core statements, compiled once and run straight on the driver's cursor.

Why: ``Connection.execute`` spends ~50 us per call above the driver (cache-key lookup,
execution context, events, a ``CursorResult``), more than a whole SQLite upsert takes. The
memory hot path runs a few fixed statements with scalar parameters that return at most one
row, and needs none of that. A :class:`Prepared` keeps the statement a Core construct built
once, lets SQLAlchemy compile it for the connection's dialect (the same SQL text, and the same
bind and result processing ``execute`` applies), and skips only the per-call layers. Driver
errors are wrapped as SQLAlchemy's (``IntegrityError``, ``OperationalError``...), so callers
and ``Database.errors()`` see what ``execute`` would raise. Not kept, knowingly: engine echo
logging and cursor-execute events for these statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

__all__ = ["Prepared"]

_Processor = Callable[[Any], Any] | None


class Prepared:
    """One Core statement, compiled on first use per dialect, executed on the DBAPI cursor.

    Args:
        statement: a Core statement with plain (not expanding) bound parameters.
    """

    __slots__ = (
        "_binds",
        "_dbapi_error",
        "_dialect",
        "_order",
        "_positional",
        "_results",
        "_sql",
        "statement",
    )

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._dialect: Dialect | None = None
        self._sql = ""
        self._positional = True
        self._binds: list[tuple[str, _Processor]] = []
        self._order: list[str] = []
        self._results: list[_Processor] = []
        self._dbapi_error: type[Exception] = Exception

    def _compile(self, dialect: Dialect) -> None:
        compiled: Any = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise TypeError("Prepared takes statements without expanding or literal parameters")
        self._binds = [
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in compiled.binds.items()
        ]
        self._positional = bool(compiled.positional)
        self._order = list(compiled.positiontup) if self._positional else []
        self._results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(self.statement, "exported_columns", ())
        ]
        self._sql = compiled.string
        self._dbapi_error = dialect.loaded_dbapi.Error
        self._dialect = dialect

    def first(
        self, conn: Connection, params: Mapping[str, Any], *, autobegin: bool = True
    ) -> tuple[Any, ...] | None:
        """The first row, processed as ``conn.execute(statement, params).first()`` would.

        It runs in ``conn``'s transaction, begun first when there is none (as ``execute``
        does); ``autobegin=False`` runs it outside any, as the driver does (SQLite: a
        statement of its own; see Database.read_one).
        """
        dialect = conn.dialect
        if dialect is not self._dialect:
            self._compile(dialect)
        if autobegin and not conn.in_transaction():
            conn.begin()
        values = {
            name: params[name] if process is None else process(params[name])
            for name, process in self._binds
        }
        args: Any = tuple([values[name] for name in self._order]) if self._positional else values
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._sql, args)
            row = cursor.fetchone() if cursor.description else None
        except self._dbapi_error as exc:
            raise DBAPIError.instance(
                self._sql, args, exc, self._dbapi_error, dialect=dialect
            ) from exc
        finally:
            cursor.close()
        if row is None:
            return None
        return tuple(
            [
                value if process is None else process(value)
                for value, process in zip(row, self._results, strict=False)
            ]
        )
