"""Database on SQLite: run on the event loop while nothing waits, on a thread when a write
would; new files switched to WAL by processes starting at once.

Another process holding the write lock (``mnemobot memory set``) must not stall the loop: the
write that finds the lock taken runs again from the start on the writer thread, and writes
once.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.storage.database import SQLITE_MMAP_BYTES, Database
from mnemobot.runtime.storage.tables import USERS
from tests.runtime.storage.at_once import at_once


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    path = tmp_path / "mnemobot.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.start()
    yield db, path
    db.stop()


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    """Readiness: poll ``check`` on the loop (which must stay free for it to be seen)."""
    for _ in range(int(within / 0.001)):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("not ready in time")


def users(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(USERS)).scalar_one())


def add_user(db: Database, user_id: str, calls: list[str]) -> str:
    calls.append(threading.current_thread().name)
    with db.write() as conn:
        conn.execute(
            insert(USERS).values(id=user_id, display_name=user_id, created_at=ManualClock().now())
        )
    return user_id


async def test_a_write_runs_on_the_loop_while_nothing_holds_the_lock(sqlite_db):
    db, _ = sqlite_db
    calls: list[str] = []

    assert await db.run(add_user, db, "ana", calls) == "ana"

    assert calls == [threading.current_thread().name]
    assert users(db) == 1


async def test_a_write_waits_for_another_process_off_the_loop_and_writes_once(sqlite_db):
    db, path = sqlite_db
    calls: list[str] = []
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        writing = asyncio.create_task(db.run(add_user, db, "ana", calls))
        await until(lambda: len(calls) == 2)  # tried on the loop, gave up, again on the thread
        assert not writing.done()
        # the loop is free meanwhile: a read answers at once, and a write goes to the thread
        assert await db.run(users, db) == 0
        second = asyncio.create_task(db.run(add_user, db, "bia", calls))
        await until(lambda: len(calls) == 3)  # tried on the loop: our writer thread has it
        assert not writing.done() and not second.done()
    finally:
        other.rollback()
        other.close()

    assert await writing == "ana"
    assert await second == "bia"
    loop_thread = threading.current_thread().name
    assert [name == loop_thread for name in calls] == [True, False, True, False]
    assert users(db) == 2


async def test_a_search_reads_off_the_loop_while_another_process_writes(sqlite_db):
    """Recall's searches rank thousands of rows: they run on a thread, never on the loop."""
    db, path = sqlite_db
    await db.run(add_user, db, "ana", [])
    seen: list[str] = []

    def count_users(db: Database) -> int:
        seen.append(threading.current_thread().name)
        return users(db)

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer elsewhere: WAL readers do not wait for it
    try:
        assert await db.run_search(count_users, db) == 1
    finally:
        other.rollback()
        other.close()

    assert seen and seen[0].startswith("sqlite-search")


def test_every_sqlite_connection_reads_through_a_memory_map(tmp_path: Path) -> None:
    """Search threads and writers alike: a long history's recall reads pages all over the
    file, and a read() of each cost a 100,000-line prompt ~0.5 ms (bench/recall_cost.py)."""
    db = Database(f"sqlite:///{tmp_path / 'mapped.db'}")
    db.start()
    try:
        with db.read() as conn:
            reader = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
        with db.write() as conn:
            writer = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
    finally:
        db.stop()

    assert reader == writer == SQLITE_MMAP_BYTES > 0


def _open_at_once(url: str, gate: Any, results: Any) -> None:
    """One worker's first connection, in a process of its own: its journal mode, or why not."""
    db = Database(url)
    db.start()
    try:
        gate.wait()
        with db.read() as conn:
            results.put(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.stop()


def test_processes_opening_a_new_file_at_once_all_open_it_in_wal(tmp_path: Path) -> None:
    """Workers starting together on a new file each switch it to WAL; SQLite answered one of
    them "database is locked" without waiting (one start of four in ten, here 40 starts)."""
    for start in range(40):
        url = f"sqlite:///{tmp_path / f'new-{start}.db'}"
        modes = at_once(_open_at_once, (url,), 4, start="fork", within=60)
        assert modes == ["wal"] * 4, f"start {start}"


def test_start_up_says_when_postgresql_has_too_few_connections_for_this_process(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process may open ~30 PostgreSQL connections; a server whose max_connections
    leaves fewer gets "too many clients" under load. Start-up says so (``mnemobot run``)."""
    modest, greedy = Database(db_url, held_connections=1), Database(db_url, held_connections=500)
    for db in (modest, greedy):
        db.start()
    try:
        assert modest.most_connections == 18  # 10 statement threads, 4 intake, 1 turn, 3 spare
        assert modest.connection_shortfall() is None
        said = greedy.connection_shortfall()
        if modest.is_sqlite:  # a file has no connection limit
            assert said is None
            return
        assert said is not None
        assert said.startswith("PostgreSQL takes ") and " this process may open 517 " in said
        assert said.endswith("raise max_connections or lower workers.max_turns")
        # a server that will not say (a setting it lacks, a proxy in front): nothing to advise
        unreadable = text("SELECT current_setting('mnemobot.no_such_setting')")
        monkeypatch.setattr("mnemobot.runtime.storage.database._CONNECTION_ROOM", unreadable)
        assert greedy.connection_shortfall() is None
    finally:
        for db in (modest, greedy):
            db.stop()
