"""The one place that opens database connections.

SQLite (the embedded default) gets WAL, ``synchronous=NORMAL`` and a busy timeout on every
connection, and write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the
busy timeout instead of failing on a lock upgrade. PostgreSQL is used through psycopg 3.

The storage layer below is synchronous SQLAlchemy Core (the cheapest path per statement; see
``bench/memory_ops.py``). :meth:`Database.run` is the async door the runtime uses: on SQLite
the work runs inline (a local file, microseconds per statement, and one writer at a time
anyway); on PostgreSQL it runs in a worker thread so network round trips never stall the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from runtime.errors import StorageError

__all__ = ["Database", "normalise_url"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """An engine plus the transaction helpers every store uses.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///path`` creates the file's folder if needed.
        echo: log every statement (debugging only).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self._echo = echo
        self._engine: Engine | None = None

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StorageError("database not started: call Database.start() first")
        return self._engine

    def start(self) -> None:
        """Create the engine (no connection is opened until the first statement)."""
        if self._engine is not None:
            return
        url = make_url(self.url)
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                folder = Path(url.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(
                        f"cannot create the database folder {folder}: {exc}"
                    ) from exc
            engine = create_engine(url, echo=self._echo, connect_args={"check_same_thread": False})
            _prepare_sqlite(engine)
        else:
            engine = create_engine(
                url, echo=self._echo, pool_pre_ping=True, pool_size=10, max_overflow=20
            )
        self._engine = engine

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        with self.errors(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (rolled back at the end)."""
        with self.errors(), self.engine.connect() as conn, conn.begin() as txn:
            yield conn
            txn.rollback()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver errors into StorageError with the driver's first line as the reason."""
        try:
            yield
        except OperationalError as exc:
            raise StorageError(f"database unavailable: {_first_line(exc)}") from exc
        except DBAPIError as exc:
            raise StorageError(f"database error: {_first_line(exc)}") from exc

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking storage function without stalling the event loop on a network DB."""
        if self.is_sqlite:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
