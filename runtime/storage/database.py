"""The one place that opens database connections.

SQLite (the embedded default) gets WAL, ``synchronous=NORMAL`` and a busy timeout on every
connection, and write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the
busy timeout instead of failing on a lock upgrade. PostgreSQL is used through psycopg 3.

The storage layer below is synchronous SQLAlchemy Core (the cheapest path per statement; see
``bench/memory_ops.py``). :meth:`Database.run` is the async door the runtime uses: on SQLite
the work runs inline (a local file, microseconds per statement, and one writer at a time
anyway), except reads that take milliseconds (recall's searches, :meth:`Database.run_search`)
and writes that would wait for the lock, which go to threads; on PostgreSQL it runs on threads
of the database's own, so network round trips never stall the event loop.

On PostgreSQL a thread is a connection in use, so threads and pool are sized together:
:data:`STATEMENT_THREADS` for :meth:`Database.run`, :data:`INTAKE_THREADS` for storing
arriving events (:meth:`Database.run_intake`), and room for the connections callers hold
outside both (``held_connections``: the conversation locks, one per turn in flight). asyncio's
default executor would size the threads by CPU count (6 on 2 cores), and 16 turns in flight
then queue for threads, not for the database (``bench/_scaling.py``, section 6b).

On SQLite a short transaction costs little more than its statements, so the per-call layers
around it show: each thread keeps one connection checked out (no pool checkout, reset and
return per call), BEGIN goes straight to the driver, and :meth:`Database.read_one` runs a lone
read without BEGIN/ROLLBACK (a single SELECT is its own snapshot).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from mnemobot.runtime.errors import StorageError
from mnemobot.runtime.storage.dialect import SQLITE, Dialect, dialect_for
from mnemobot.runtime.storage.folding import register_spaced
from mnemobot.runtime.storage.prepared import Prepared

__all__ = ["Database", "normalise_url"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
STATEMENT_THREADS = 10  # PostgreSQL: threads (so connections) running Database.run
INTAKE_THREADS = 4  # PostgreSQL: threads that only store arriving events (see run_intake)
# SQLite: a connection reads the file's first this many bytes through a memory map instead of
# a read() a page (Rails' SQLite default does the same, at 128 MiB). A long history's recall
# reads pages all over the file (its hits, their sessions, the lines around them): at 100,000
# lines the transcript search took 2.2 ms with reads, 1.6 with the map (bench/recall_cost.py).
# Address space, not memory: the pages are the kernel's cache, shared by every connection.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
SEARCH_THREADS = 2  # SQLite: threads for reads that can take milliseconds (see run_search)
SPARE_CONNECTIONS = 3  # PostgreSQL: a deployment role lock, start-up checks, a CLI's calls
# PostgreSQL: connections a client may still open, and those open now (every client's)
_CONNECTION_ROOM = text(
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int,"
    " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
PING_AFTER_IDLE_SECONDS = 5.0  # PostgreSQL: a pooled connection idle this long is pinged
_IDLE_SINCE = "mnemobot_idle_since"  # connection record info key
_SQLITE_BEGIN = "mnemobot_sqlite_begin"  # connection info key: the mode of the next BEGIN
_NO_WAIT = "IMMEDIATE, or give up at once"  # that mode, on the event loop (see Database.run)


class _WouldWait(BaseException):
    """The write lock is taken: a write on the event loop gives up, to run on a thread.

    A BaseException, so a caller's ``except Exception`` cannot swallow it on its way out.
    """


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _prepare_sqlite(engine: Engine, driver: ModuleType, extensions: Sequence[str]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        register_spaced(dbapi_conn)  # the recall index's triggers call it (storage.folding)
        if extensions:  # sqlite-vec (storage.sqlite_vec), probed to load before we get here
            dbapi_conn.enable_load_extension(True)
            for path in extensions:
                dbapi_conn.load_extension(path)
            dbapi_conn.enable_load_extension(False)
        cursor = dbapi_conn.cursor()
        # The timeout first: switching a new file to WAL takes a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor, driver)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: SQLAlchemy has opened its transaction already, and a full
        # exec_driver_sql round (events, execution context, result) costs as much as an upsert.
        # write() asks for IMMEDIATE for its next BEGIN only (the connection is reused).
        mode = conn.info.pop(_SQLITE_BEGIN, "DEFERRED")
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if mode == _NO_WAIT:
            raw.execute("PRAGMA busy_timeout=0")
            try:
                raw.execute("BEGIN IMMEDIATE")
            except driver.OperationalError as exc:
                if exc.sqlite_errorcode == driver.SQLITE_BUSY:
                    raise _WouldWait from exc
                raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, driver.Error) from exc
            finally:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            return
        sql = f"BEGIN {mode}"
        try:
            raw.execute(sql)
        except driver.Error as exc:
            raise DBAPIError.instance(sql, (), exc, driver.Error) from exc


def _switch_to_wal(cursor: Any, driver: ModuleType) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while another connection is switching too.

    On a new file the switch takes an exclusive lock, and when several processes start on it
    at once, SQLite sees one of them waiting on another's shared lock while holding its own
    and answers "database is locked" at once instead of calling the busy handler (it would
    deadlock). Tried again, the switch finds the file in WAL already. One in ten starts of
    four workers on a new file failed so.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except driver.OperationalError as exc:
            if exc.sqlite_errorcode != driver.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping``, for connections that sat idle in the pool a while only.

    A server restart, or a proxy closing idle connections, leaves dead ones in the pool; a
    ping on checkout finds them before a turn does. But a turn checks out a dozen times, and
    pinging each checkout was a fifth of a busy worker's time (bench/_scaling.py). A
    connection checked in moments ago is alive; one that dies in use is invalidated with
    the rest of the pool (SQLAlchemy's disconnect handling, and ``Prepared``'s).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces it and tries again
            raise DisconnectionError(f"pooled connection found dead: {exc}") from exc


class Database:
    """An engine plus the transaction helpers every store uses.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///path`` creates the file's folder if needed.
        echo: log every statement (debugging only).
        held_connections: PostgreSQL connections callers may hold at once outside
            :meth:`run`, for longer than a statement: the conversation locks, one per turn in
            flight (``[workers] max_turns``). The pool makes room for them.
        sqlite_driver: the DB-API module SQLite is opened with (``[database]
            sqlite_driver``): the standard ``sqlite3``, or sqlean's, which can load extensions
            where this Python's cannot.
        sqlite_extensions: SQLite loadable libraries loaded into every connection (sqlite-vec,
            :mod:`storage.sqlite_vec`).
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        held_connections: int = 16,
        sqlite_driver: ModuleType = sqlite3,
        sqlite_extensions: Sequence[str] = (),
    ) -> None:
        self.url = normalise_url(url)
        self.sqlite_driver = sqlite_driver
        self._sqlite_extensions = tuple(sqlite_extensions)
        self._dialect = dialect_for(self.url)  # parsed once: asked every call
        self._echo = echo
        self._held_connections = held_connections
        self._engine: Engine | None = None
        # SQLite: .conn, this thread's held connection; .inline, whether this thread runs a
        # function for run() on the event loop (a write must not wait there)
        self._local = threading.local()
        self._writer = threading.RLock()  # SQLite: one write transaction of ours at a time
        self._held: list[Connection] = []
        self._held_lock = threading.Lock()
        self._statements: ThreadPoolExecutor | None = None
        self._intake: ThreadPoolExecutor | None = None
        self._searches: ThreadPoolExecutor | None = None

    @property
    def dialect(self) -> Dialect:
        """What this database can do (row locks, advisory locks, ...) and its upsert."""
        return self._dialect

    def describe(self) -> str:
        """The database's kind, for people (``sqlite``, ``postgresql``)."""
        return self._dialect.name

    @property
    def most_connections(self) -> int:
        """PostgreSQL connections this process may hold at once: one per statement and intake
        thread, one per turn holding its conversation's lock, and the spare ones."""
        return STATEMENT_THREADS + INTAKE_THREADS + self._held_connections + SPARE_CONNECTIONS

    def connection_shortfall(self) -> str | None:
        """Why PostgreSQL may refuse this process connections, or None (always on SQLite).

        The server takes ``max_connections`` clients (less those reserved for superusers),
        every worker process and other client counted; a process that reaches the limit
        under load gets "too many clients", and its turns fail (a platform's event is
        answered 500 and delivered again). Read once at start-up: the connections open then
        are the other workers' and clients' (and this check's own, which is one of this
        process's).
        """
        if self._dialect is SQLITE:
            return None
        try:
            with self.read() as conn:
                allowed, open_now = conn.execute(_CONNECTION_ROOM).one()
        except (DBAPIError, StorageError) as exc:  # advice only: never what stops a start
            logger.debug("connection limits not read: %s", exc)
            return None
        room = allowed - open_now + 1  # this check's connection is one of ours
        if room >= self.most_connections:
            return None
        return (
            f"PostgreSQL takes {allowed} connections and {open_now} are open; this process may "
            f"open {self.most_connections} ({STATEMENT_THREADS + INTAKE_THREADS} for statements "
            f"and arriving events, {self._held_connections} for the turns it runs at once "
            f"(workers.max_turns), {SPARE_CONNECTIONS} spare), {room} are left for it. Past "
            "the limit its turns fail and platforms deliver their events again: raise "
            "max_connections or lower workers.max_turns"
        )

    @property
    def is_sqlite(self) -> bool:
        """For tests and tools; the runtime asks :attr:`dialect` for a capability instead."""
        return self._dialect is SQLITE

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
        if self._dialect is SQLITE:
            if url.database and url.database != ":memory:":
                folder = Path(url.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(
                        f"cannot create the database folder {folder}: {exc}"
                    ) from exc
            engine = create_engine(
                url,
                echo=self._echo,
                module=self.sqlite_driver,
                connect_args={"check_same_thread": False},
            )
            _prepare_sqlite(engine, self.sqlite_driver, self._sqlite_extensions)
            # One writer at a time anyway: one thread for run(), one for run_intake().
            self._statements = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
            self._intake = ThreadPoolExecutor(1, thread_name_prefix="sqlite-intake")
            self._searches = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="sqlite-search")
        else:
            engine = create_engine(
                url,
                echo=self._echo,
                pool_size=STATEMENT_THREADS + INTAKE_THREADS,  # kept open: in use every turn
                max_overflow=self._held_connections + SPARE_CONNECTIONS,
            )
            _ping_idle_connections(engine)
            self._statements = ThreadPoolExecutor(STATEMENT_THREADS, thread_name_prefix="db")
            self._intake = ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="intake")
        self._engine = engine

    def stop(self) -> None:
        for threads in (self._statements, self._intake, self._searches):
            if threads is not None:
                threads.shutdown(wait=True)
        self._statements = self._intake = self._searches = None
        with self._held_lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self._local = threading.local()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def write(self) -> _Transaction:
        """A write transaction: committed on success, rolled back on any error."""
        return _Transaction(self, write=True)

    def read(self) -> _Transaction:
        """A read-only snapshot (rolled back at the end)."""
        return _Transaction(self, write=False)

    def read_one(self, statement: Prepared, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one read statement that needs no other in its snapshot.

        A lone SELECT is its own snapshot, so it runs with no BEGIN/ROLLBACK around it: on
        SQLite those would cost as much as the read, on PostgreSQL two more round trips. When
        this thread's SQLite connection is busy, it runs in a read() transaction instead.
        """
        return self._lone_read(statement.first, params)

    def read_all(self, statement: Prepared, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of one read statement that needs no other in its snapshot (see read_one)."""
        return self._lone_read(statement.all, params)

    def _lone_read(self, fetch: Callable[..., T], params: Mapping[str, Any]) -> T:
        try:
            conn, pooled = self._checkout()
            try:
                if not pooled:
                    return fetch(conn, params, autobegin=False)
                if self._dialect is not SQLITE:
                    # Autocommit for this one statement (as SQLAlchemy's own pre-ping does):
                    # one round trip instead of BEGIN, SELECT, COMMIT.
                    driver = conn.connection.driver_connection
                    driver.autocommit = True  # type: ignore[union-attr]
                    try:
                        return fetch(conn, params, autobegin=False)
                    finally:
                        if not driver.closed:  # type: ignore[union-attr]
                            driver.autocommit = False  # type: ignore[union-attr]
                with conn.begin():
                    return fetch(conn, params)
            finally:
                if pooled:
                    conn.close()
        except DBAPIError as exc:
            raise _storage_error(exc) from exc

    def _checkout(self) -> tuple[Connection, bool]:
        """A connection, and whether it is a pooled one the caller must close.

        On SQLite: this thread's held connection, opened on first use; a pooled one when the
        held one is inside a transaction already (nested use), so none is ever shared.
        """
        if self._dialect is not SQLITE:
            return self.engine.connect(), True
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.conn = conn
            with self._held_lock:
                self._held.append(conn)
        elif conn.in_transaction():
            return self.engine.connect(), True
        return conn, False

    def _drop_held(self, conn: Connection) -> None:
        """Forget a held connection whose state can no longer be trusted (a failed BEGIN)."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._held_lock:
            if conn in self._held:
                self._held.remove(conn)
        conn.close()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver errors into StorageError with the driver's first line as the reason."""
        try:
            yield
        except DBAPIError as exc:
            raise _storage_error(exc) from exc

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking storage function without ever waiting for the database on the loop.

        On PostgreSQL ``fn`` runs on the database's threads. On SQLite it runs on the event
        loop, where it costs microseconds (a hop to a thread and back would cost more than
        the statements), unless it would wait: when its first write transaction finds the
        write lock taken (another process's ``mnemobot memory set``, or our own writer thread
        busy), that transaction gives up at once and ``fn`` runs again, from the start, on the
        database's writer thread, where waiting stalls nobody else. So ``fn`` must do nothing
        but read before its first write transaction (the stores' functions all open it first).
        A second write transaction after one has committed waits where it is (rare: forget).
        """
        if self._dialect is SQLITE:
            local = self._local
            local.inline = True
            try:
                return fn(*args, **kwargs)
            except _WouldWait:
                pass
            finally:
                local.inline = False
        return await _on(self._statements, fn, *args, **kwargs)

    async def run_search(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run read-only work that can take milliseconds (recall's searches) off the loop.

        :meth:`run` keeps SQLite statements on the event loop because most cost microseconds;
        a full-text search over a long history ranks thousands of rows, and on the loop every
        other conversation (and a platform waiting for its acknowledgement) would wait for it.
        On SQLite it runs on threads of its own, each with its own connection (WAL readers
        never wait for the writer, and the sqlite3 module lets go of the GIL while a
        statement runs); on PostgreSQL on the statement threads, as :meth:`run`. ``fn`` must
        only read.
        """
        threads = self._searches if self._dialect is SQLITE else self._statements
        return await _on(threads, fn, *args, **kwargs)

    async def run_intake(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like :meth:`run`, on threads that only store arriving events.

        The platform waits for its acknowledgement until the event is stored (Slack retries
        after 3 s). Turns in flight keep :meth:`run`'s threads busy with a queue of their
        statements; an event stored through that queue would wait behind all of them.
        On SQLite, as with :meth:`run`: on the loop unless the write would wait.
        """
        if self._dialect is SQLITE:
            local = self._local
            local.inline = True
            try:
                return fn(*args, **kwargs)
            except _WouldWait:
                pass
            finally:
                local.inline = False
        return await _on(self._intake, fn, *args, **kwargs)


async def _on(
    threads: ThreadPoolExecutor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn`` on one of ``threads``, with the caller's context variables, as ``to_thread``."""
    if threads is None:
        raise StorageError("database not started: call Database.start() first")
    call = partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(threads, call)


class _Transaction:
    """What read() and write() return: a context manager yielding a connection in a transaction.

    A plain class rather than nested ``@contextmanager`` generators, whose layers cost more
    than a SQLite statement. Driver errors leave as StorageError, as with Database.errors().
    """

    __slots__ = ("_conn", "_db", "_inline", "_pooled", "_txn", "_write", "_writer")

    def __init__(self, db: Database, *, write: bool) -> None:
        self._db = db
        self._write = write

    def __enter__(self) -> Connection:
        db = self._db
        self._writer = self._inline = False
        if self._write and db._dialect is SQLITE:
            # Our own writers queue here, not in SQLite's busy handler (which sleeps); on the
            # event loop nothing may wait, so a taken lock sends the work to a thread.
            self._inline = getattr(db._local, "inline", False)
            if not db._writer.acquire(blocking=not self._inline):
                raise _WouldWait
            self._writer = True
        try:
            conn, self._pooled = db._checkout()
        except BaseException as exc:
            self._release_writer()
            if isinstance(exc, DBAPIError):
                raise _storage_error(exc) from exc
            raise
        try:
            if self._writer:
                conn.info[_SQLITE_BEGIN] = _NO_WAIT if self._inline else "IMMEDIATE"
            self._txn = conn.begin()
        except BaseException as exc:
            self._release_writer()
            conn.info.pop(_SQLITE_BEGIN, None)
            if self._pooled:
                conn.close()
            elif not isinstance(exc, _WouldWait):  # that BEGIN failed cleanly
                db._drop_held(conn)  # a failed BEGIN can leave SQLAlchemy's state half-set
            if isinstance(exc, DBAPIError):
                raise _storage_error(exc) from exc
            raise
        self._conn = conn
        return conn

    def _release_writer(self) -> None:
        if self._writer:
            self._writer = False
            self._db._writer.release()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc_type is None and self._write:
                self._txn.commit()
                if self._inline:  # run()'s function cannot be run again from the start now
                    self._db._local.inline = False
            else:
                self._txn.rollback()
        except DBAPIError as end_exc:
            raise _storage_error(end_exc) from end_exc
        finally:
            self._release_writer()
            if self._pooled:
                self._conn.close()
        if isinstance(exc, DBAPIError):
            raise _storage_error(exc) from exc


def _storage_error(exc: DBAPIError) -> StorageError:
    if isinstance(exc, OperationalError):
        return StorageError(f"database unavailable: {_first_line(exc)}")
    return StorageError(f"database error: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
