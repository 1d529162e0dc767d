"""One turn at a time per conversation, in one process or across many.

:class:`LocalLocks` serialises turns inside one process (SQLite deployments are one process).
:class:`PgAdvisoryLocks` serialises them across every worker process sharing a PostgreSQL:
a *transaction-level* advisory lock (``pg_advisory_xact_lock``) taken in a transaction on a
dedicated connection and held for the whole turn. The lock goes away with that transaction,
at commit, rollback or when the connection dies (a SIGKILLed worker frees its conversations
at once), and it is never left on a pooled session, so it is safe behind PgBouncer in
transaction pooling mode.

Two smaller tools live here too: :func:`try_xact_lock`, for periodic jobs where one worker
of several is enough (the janitor), and :class:`DeploymentLock`, a session-level lock for a
role only one process may play for hours (polling one Telegram token).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy import Connection, text

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.dialect import dialect_of

__all__ = [
    "ConversationLocks",
    "DeploymentLock",
    "LocalLocks",
    "PgAdvisoryLocks",
    "advisory_key",
    "locks_for",
    "try_xact_lock",
]

logger = logging.getLogger(__name__)

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_TRY_XACT = text("SELECT pg_try_advisory_xact_lock(:key)")
_TRY_SESSION = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK_SESSION = text("SELECT pg_advisory_unlock(:key)")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same in every process and release).

    Python's ``hash()`` is salted per process, so it cannot name a lock shared by workers.
    """
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ConversationLocks(Protocol):
    def hold(self, conversation: str) -> AbstractAsyncContextManager[None]:
        """Held while one turn of ``conversation`` runs."""
        ...

    async def busy(self, conversation: str) -> bool:
        """Whether a turn of ``conversation`` holds or awaits it now (anywhere it can see)."""
        ...


class LocalLocks:
    """asyncio locks keyed by conversation, dropped when nobody waits on them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, conversation: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation, (asyncio.Lock(), 0))
        self._locks[conversation] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation]
            if users <= 1:
                del self._locks[conversation]
            else:
                self._locks[conversation] = (lock, users - 1)

    async def busy(self, conversation: str) -> bool:
        """Whether a turn of this process holds ``conversation`` or waits for it."""
        return conversation in self._locks


class PgAdvisoryLocks:
    """Conversation locks shared by every process on one PostgreSQL database.

    A :class:`LocalLocks` sits in front, so turns of one conversation in this process queue
    in memory and at most one of them holds (or waits with) a database connection. At most
    ``max_held`` turns of this process hold or wait for a lock at once: each pins a pooled
    connection for the whole turn, and the rest of the pool must stay free for the turns'
    own reads and writes. Blocking waits run on threads of their own, never on the default
    executor that :meth:`Database.run` uses: a worker whose every thread waited on a lock
    held by another worker, itself short of threads, would deadlock both.

    Args:
        db: a started PostgreSQL :class:`Database`.
        max_held: conversations this process may hold or wait for at once.
    """

    def __init__(self, db: Database, *, max_held: int = 16) -> None:
        self._db = db
        self._local = LocalLocks()
        self._max_held = max_held
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._threads: ThreadPoolExecutor | None = None

    def _pool(self) -> tuple[asyncio.Semaphore, ThreadPoolExecutor]:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:  # a semaphore has one loop
            self._slots, self._slots_loop = asyncio.Semaphore(self._max_held), loop
        if self._threads is None:
            # One more thread than slots: a release never queues behind blocked acquires.
            self._threads = ThreadPoolExecutor(
                max_workers=self._max_held + 1, thread_name_prefix="advisory-lock"
            )
        return self._slots, self._threads

    def close(self) -> None:
        """Let the lock threads go (at runtime stop); held locks end with their turns."""
        if self._threads is not None:
            self._threads.shutdown(wait=False)
        self._threads, self._slots = None, None

    @asynccontextmanager
    async def hold(self, conversation: str) -> AsyncIterator[None]:
        key = advisory_key(f"mnemobot:conversation:{conversation}")
        slots, threads = self._pool()
        loop = asyncio.get_running_loop()
        async with self._local.hold(conversation), slots:
            acquiring = loop.run_in_executor(threads, self._acquire, key)
            try:
                conn = await asyncio.shield(acquiring)
            except asyncio.CancelledError:
                # The thread still waits in PostgreSQL; end its transaction once it returns.
                def release_late(done: asyncio.Future[Connection]) -> None:
                    if not done.cancelled() and done.exception() is None:
                        threads.submit(self._release, done.result())

                acquiring.add_done_callback(release_late)
                raise
            try:
                yield
            finally:
                await loop.run_in_executor(threads, self._release, conn)

    async def busy(self, conversation: str) -> bool:
        """Whether a turn of this process, or of any other worker, holds ``conversation``."""
        if await self._local.busy(conversation):
            return True
        key = advisory_key(f"mnemobot:conversation:{conversation}")
        return await asyncio.to_thread(self._held_elsewhere, key)

    def _held_elsewhere(self, key: int) -> bool:
        with self._db.errors(), self._db.engine.connect() as conn, conn.begin():
            return not conn.execute(_TRY_XACT, {"key": key}).scalar()

    def _acquire(self, key: int) -> Connection:
        with self._db.errors():
            conn = self._db.engine.connect()
            try:
                conn.begin()
                conn.execute(_LOCK, {"key": key})
            except BaseException:
                conn.close()
                raise
        return conn

    @staticmethod
    def _release(conn: Connection) -> None:
        try:
            conn.rollback()  # ends the transaction, and with it the lock
        except Exception:  # the connection died: so did its lock
            logger.warning("advisory lock connection lost before release", exc_info=True)
        finally:
            conn.close()


def locks_for(db: Database, *, max_held: int = 16) -> ConversationLocks:
    """The conversation locks a database calls for: advisory on PostgreSQL, local on SQLite."""
    if db.dialect.advisory_locks:
        return PgAdvisoryLocks(db, max_held=max_held)
    return LocalLocks()


def try_xact_lock(conn: Connection, name: str) -> bool:
    """Take the lock ``name`` for ``conn``'s transaction if free; True when this caller has it.

    For periodic jobs several workers run: the one that gets it does the pass, the others
    skip it. Always True on SQLite, where one process owns the database.
    """
    if not dialect_of(conn).advisory_locks:
        return True
    return bool(conn.execute(_TRY_XACT, {"key": advisory_key(f"mnemobot:job:{name}")}).scalar())


class DeploymentLock:
    """A role only one process of the deployment may play, held until :meth:`release`.

    A session-level advisory lock on a connection of its own, kept for as long as the role
    is played (hours; not per transaction, so it needs a direct or session-pooled connection,
    not PgBouncer's transaction mode). A process that dies loses it with its connection.
    On SQLite (one process) it is always granted.

    Args:
        db: the started database.
        name: what the role is; never a secret (hash a token before passing it).
    """

    def __init__(self, db: Database, name: str) -> None:
        self._db = db
        self._key = advisory_key(f"mnemobot:role:{name}")
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        """Whether this process has the role (always on SQLite)."""
        return not self._db.dialect.advisory_locks or self._conn is not None

    async def acquire(self) -> bool:
        """Take the role if no other process has it; False when one does."""
        if not self._db.dialect.advisory_locks or self._conn is not None:
            return True
        return await asyncio.to_thread(self._acquire)

    def _acquire(self) -> bool:
        with self._db.errors():
            conn = self._db.engine.connect()
            try:
                granted = bool(conn.execute(_TRY_SESSION, {"key": self._key}).scalar())
                conn.commit()  # keep no transaction open; the session lock stays
            except BaseException:
                conn.close()
                raise
        if not granted:
            conn.close()
            return False
        self._conn = conn
        return True

    async def release(self) -> None:
        """Give the role up (at stop); closing the connection would also end it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._release, conn)

    def _release(self, conn: Connection) -> None:
        try:
            conn.execute(_UNLOCK_SESSION, {"key": self._key})
            conn.commit()
        except Exception:
            logger.warning("role lock connection lost before release", exc_info=True)
        finally:
            conn.close()
