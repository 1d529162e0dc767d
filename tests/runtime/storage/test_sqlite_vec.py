"""sqlite-vec: a person's nearest vectors scored in SQLite, where its SQLite can load it.

The extension runs for real (the sqlite-vec wheel), loaded into sqlean.py's sqlite3, as
``[database] sqlite_driver = "sqlean"`` does: this machine's Python cannot load extensions
into its own sqlite3. Where it could, :func:`vector_search_for` uses the standard module; the
test of that asks the module what it can do rather than skipping. sqlite-vec is SQLite's
alone, so these tests are too; PostgreSQL's counterpart, pgvector, is tested in
test_pgvector.py.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.people.privacy import forget_user
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.pgvector import PostgresVectors
from mnemobot.runtime.storage.sqlite_vec import (
    SqliteVecIndex,
    extension_path,
    sqlite_driver,
    vector_search_for,
)
from mnemobot.runtime.storage.tables import RECALL_VECTORS
from mnemobot.runtime.storage.vectors import InProcessIndex, normalised
from tests.conftest import required_module, skip_unless_ci
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.storage.stored_vectors import MODEL, store_vectors, unit_vector
from tests.support import Chat, write_bot

sqlean = required_module("sqlean", reason="sqlean.py is in the dev extra (sqlite-vec)")
if extension_path() is None:
    skip_unless_ci("sqlite-vec is in the dev extra", module=True)


@pytest.fixture
def vec_db(sqlite_template: Path, tmp_path: Path):
    """A migrated SQLite database opened through sqlean with sqlite-vec in every connection."""
    path = tmp_path / "vec.db"
    shutil.copyfile(sqlite_template, path)
    search = vector_search_for(True, sqlean)
    assert isinstance(search.index, SqliteVecIndex), search.description
    db = Database(f"sqlite:///{path}", sqlite_driver=sqlean, sqlite_extensions=search.extensions)
    db.start()
    yield db
    db.stop()


def test_the_nearest_are_the_in_process_indexs_in_the_same_order(vec_db: Database) -> None:
    rows = [("ana", f"a{n:03}", unit_vector(n)) for n in range(300)]
    rows += [("bea", f"b{n:03}", unit_vector(1000 + n)) for n in range(50)]
    rows += [("ana", "zero", normalised([0.0] * 16)), ("ana", "short", unit_vector(7, dims=8))]
    store_vectors(vec_db, rows)
    query = unit_vector(99)

    with vec_db.read() as conn:
        found = SqliteVecIndex().nearest(conn, "ana", MODEL, "turn", query, 40)
        expected = InProcessIndex().nearest(conn, "ana", MODEL, "turn", query, 40)
        everything = SqliteVecIndex().nearest(conn, "ana", MODEL, "turn", query, 1000)
        other_kind = SqliteVecIndex().nearest(conn, "ana", MODEL, "episode", query, 10)
        other_model = SqliteVecIndex().nearest(conn, "ana", "other", "turn", query, 10)

    assert len(found) == 40
    assert [sid for sid, _ in found] == [sid for sid, _ in expected]
    assert all(
        math.isclose(a, b, abs_tol=1e-5) for (_, a), (_, b) in zip(found, expected, strict=True)
    )
    ids = {sid for sid, _ in everything}
    assert len(ids) == 301 and "zero" in ids  # a zero vector scores 0, as in process
    assert "short" not in ids  # another size of vector is never compared
    assert not any(sid.startswith("b") for sid in ids)  # never another person's
    assert dict(everything)["zero"] == 0.0
    assert other_kind == [] and other_model == []


def test_a_limit_below_one_finds_nothing(vec_db: Database) -> None:
    store_vectors(vec_db, [("ana", "a", unit_vector(1))])
    with vec_db.read() as conn:
        assert SqliteVecIndex().nearest(conn, "ana", MODEL, "turn", unit_vector(1), 0) == []


def test_vector_search_for_says_where_vectors_are_compared_and_why() -> None:
    on_postgresql = vector_search_for(False, sqlite3)  # chosen once the database is open
    assert isinstance(on_postgresql.index, PostgresVectors) and on_postgresql.extensions == ()
    assert isinstance(on_postgresql.index.index, InProcessIndex)  # till then

    own = vector_search_for(True, sqlite3)  # this Python's own sqlite3, whatever it can do
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        assert isinstance(own.index, SqliteVecIndex) and own.extensions
    else:
        assert isinstance(own.index, InProcessIndex) and own.extensions == ()
        assert 'sqlite_driver = "sqlean"' in own.description

    by_sqlean = vector_search_for(True, sqlean)
    assert isinstance(by_sqlean.index, SqliteVecIndex)
    assert by_sqlean.extensions == (extension_path(),)
    assert "sqlite-vec" in by_sqlean.description


def test_without_the_package_vectors_are_compared_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sqlite_vec", None)  # as if it were not installed

    search = vector_search_for(True, sqlean)

    assert isinstance(search.index, InProcessIndex) and search.extensions == ()
    assert "pip install 'mnemobot[sqlite-vec]'" in search.description


def test_a_library_that_does_not_load_falls_back_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "vec0.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setattr("mnemobot.runtime.storage.sqlite_vec.extension_path", lambda: str(broken))

    search = vector_search_for(True, sqlean)

    assert isinstance(search.index, InProcessIndex) and search.extensions == ()
    assert "sqlite-vec did not load" in search.description


def test_the_sqlean_driver_without_its_package_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sqlean", None)

    with pytest.raises(ConfigError, match=r"pip install 'mnemobot\[sqlite-vec\]'"):
        sqlite_driver("sqlean")


# -- the runtime ---------------------------------------------------------------------------


async def test_a_runtime_on_sqlean_recalls_by_meaning_through_sqlite_vec(
    sqlite_template: Path,
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``[database] sqlite_driver = "sqlean"`` with embeddings on: the worker's vectors are
    searched in SQLite, and the same file opened without the extension answers alike."""
    path = tmp_path / "mnemobot.db"
    shutil.copyfile(sqlite_template, path)
    write_bot(
        tmp_path / "bots",
        "helper",
        bot_py="""
            async def on_message(ctx):
                await ctx.say("ok")
        """,
        config="name,value\nepisodic-memory-threshold,1\n",
    )
    monkeypatch.setenv("FAKE_KEY", "not-a-secret")
    summary = (
        '{"summary": "small talk", "topics": [], "sentiment": "neutral", "resolution": "resolved"}'
    )
    with FakeOpenAI(lambda _messages: summary, synonyms=[{"car", "automobile"}]) as fake:

        def settings(driver: str) -> Any:
            return fake.settings(
                {"url": f"sqlite:///{path}", "sqlite_driver": driver}, tmp_path / "bots"
            )

        caplog.set_level("INFO", logger="mnemobot.runtime.pipeline.runtime")
        runtime = build_runtime(settings("sqlean"), clock=clock)
        await runtime.start()
        try:
            assert isinstance(runtime.recall.index, SqliteVecIndex)
            assert "compares vectors in SQLite, by sqlite-vec" in caplog.text
            chat = Chat(runtime, bot="helper", user="ana")
            for line in ("the weather was lovely", "I bought a blue automobile", "bye"):
                await chat.say(line)
                clock.advance(seconds=1)  # each line its own moment: the line after is known
            await chat.say("/end")
            ana = await chat.user_id()
            await runtime.episode_worker.run_until_idle()
            vector = await runtime.recall.query_vector("which car?")
            by_vec = await runtime.db.run(
                runtime.recall.search, ana, "which car?", limit=3, query_vector=vector
            )
        finally:
            await runtime.stop()

        # the reply said before the line is embedded with it (the same words): the two tie
        turns = [f for f in by_vec if f.kind == "turn"]
        assert {f.text for f in turns[:2]} == {"I bought a blue automobile", "ok"}
        assert turns[0].similarity and turns[0].similarity == turns[1].similarity
        # the same file through the standard sqlite3: in process, where it cannot load sqlite-vec
        again = build_runtime(settings("sqlite3"), clock=clock)
        await again.start()
        try:
            vector = await again.recall.query_vector("which car?")
            in_process = await again.db.run(
                again.recall.search, ana, "which car?", limit=3, query_vector=vector
            )
            assert {f.id: f.kind for f in in_process} == {f.id: f.kind for f in by_vec}
            similarity = {f.id: f.similarity for f in by_vec}  # tied lines come in either order
            assert {f.id: f.similarity for f in in_process} == pytest.approx(similarity, abs=1e-5)
            removed = forget_user(again.db, ana)
            assert removed["recall_vectors"] > 0
            with again.db.read() as conn:
                assert conn.execute(select(RECALL_VECTORS)).all() == []
        finally:
            await again.stop()
