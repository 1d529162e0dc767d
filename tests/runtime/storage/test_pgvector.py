"""pgvector: a person's nearest vectors scored in PostgreSQL, where the database has it.

The extension runs for real: a PostgreSQL 16 with pgvector from the pgserver wheel (the dev
extra), one server for the run (``pgvector_server``), a database of each test's own. Without
pgserver these tests skip, saying why (on CI, which installs it, they fail). The project's own
PostgreSQL 15 has no pgvector: the last tests check that it is left as it was and compares in
process, saying why.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, make_url, select, text, update
from sqlmodel import SQLModel

from mnemobot.runtime.app.build import build_runtime
from mnemobot.runtime.clock import ManualClock
from mnemobot.runtime.people.privacy import forget_user
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import outside_the_models
from mnemobot.runtime.storage.pgvector import (
    PgVectorIndex,
    PostgresVectors,
    pgvector_in,
)
from mnemobot.runtime.storage.sqlite_vec import vector_search_for
from mnemobot.runtime.storage.tables import RECALL_VECTORS
from mnemobot.runtime.storage.vectors import (
    InProcessIndex,
    normalised,
    pack,
)
from tests.conftest import skip_unless_ci
from tests.fakes.openai_api import FakeOpenAI
from tests.runtime.storage.stored_vectors import MODEL, store_vectors, unit_vector
from tests.support import Chat, write_bot


def _open(url: str) -> Database:
    db = Database(url)
    db.start()
    return db


@pytest.fixture
def plain_db(pgvector_url: str):
    """A migrated database on the pgvector server, pgvector not enabled in it yet."""
    db = _open(pgvector_url)
    yield db
    db.stop()


@pytest.fixture
def vec_db(plain_db: Database) -> Database:
    """The same, with pgvector enabled as a runtime's start does it."""
    assert "by pgvector" in PostgresVectors().open(plain_db)
    return plain_db


def _embeddings(db: Database) -> dict[str, tuple[bytes, str | None]]:
    """source id -> (its bytes, its pgvector column as text)."""
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT source_id, vector, embedding::text FROM recall_vectors")
        ).all()
    return {sid: (bytes(blob), as_text) for sid, blob, as_text in rows}


def _as_bytes(as_text: str) -> bytes:
    """A pgvector's text form, back to our stored bytes."""
    return pack(array("f", [float(x) for x in as_text.strip("[]").split(",")]))


def _rows() -> list[tuple[str, str, array[float]]]:
    query_like = unit_vector(99)
    rows = [("ana", f"a{n:03}", unit_vector(n)) for n in range(300)]
    rows += [("bea", f"b{n:03}", unit_vector(1000 + n)) for n in range(50)]
    rows += [("bea", "b-query", query_like)]  # another person's exact match
    rows += [("ana", "tie-1", query_like), ("ana", "tie-2", query_like)]  # a tie, at the top
    rows += [("ana", "zero", normalised([0.0] * 16)), ("ana", "short", unit_vector(7, dims=8))]
    rows += [("ana", "kept", array("f"))]  # a row kept from the model (dims 0)
    return rows


def test_the_nearest_are_the_in_process_indexs_in_the_same_order(vec_db: Database) -> None:
    store_vectors(vec_db, _rows())
    query = unit_vector(99)

    with vec_db.read() as conn:
        found = PgVectorIndex().nearest(conn, "ana", MODEL, "turn", query, 40)
        expected = InProcessIndex().nearest(conn, "ana", MODEL, "turn", query, 40)
        everything = PgVectorIndex().nearest(conn, "ana", MODEL, "turn", query, 1000)
        all_in_process = InProcessIndex().nearest(conn, "ana", MODEL, "turn", query, 1000)
        other_kind = PgVectorIndex().nearest(conn, "ana", MODEL, "episode", query, 10)
        other_model = PgVectorIndex().nearest(conn, "ana", "other", "turn", query, 10)

    assert len(found) == 40
    assert [sid for sid, _ in found[:2]] == ["tie-2", "tie-1"]  # ties: the larger id first
    assert [sid for sid, _ in found] == [sid for sid, _ in expected]
    assert all(
        math.isclose(a, b, abs_tol=1e-5) for (_, a), (_, b) in zip(found, expected, strict=True)
    )
    assert [sid for sid, _ in everything] == [sid for sid, _ in all_in_process]
    ids = {sid for sid, _ in everything}
    assert len(ids) == 303 and "zero" in ids  # a zero vector scores 0, as in process
    assert dict(everything)["zero"] == 0.0
    assert not {"short", "kept"} & ids  # another size of vector is never compared
    assert not any(sid.startswith("b") for sid in ids)  # never another person's
    assert other_kind == [] and other_model == []


def test_a_zero_or_empty_query_scores_as_in_process(vec_db: Database) -> None:
    store_vectors(vec_db, _rows())
    with vec_db.read() as conn:
        for query in (normalised([0.0] * 16), array("f")):
            found = PgVectorIndex().nearest(conn, "ana", MODEL, "turn", query, 5)
            assert found == InProcessIndex().nearest(conn, "ana", MODEL, "turn", query, 5)
        assert found == [("kept", 0)]  # the empty query: only the row of no dimensions
        assert PgVectorIndex().nearest(conn, "ana", MODEL, "turn", unit_vector(1), 0) == []


def test_the_column_is_the_bytes_exactly_on_insert_update_and_delete(vec_db: Database) -> None:
    rows = _rows()
    store_vectors(vec_db, rows)

    stored = _embeddings(vec_db)
    assert all(_as_bytes(as_text) == blob for blob, as_text in stored.values() if as_text)
    assert stored["kept"][1] is None  # no dimensions: nothing for pgvector to compare
    assert sum(as_text is not None for _, as_text in stored.values()) == len(rows) - 1

    v = RECALL_VECTORS.c
    with vec_db.write() as conn:
        conn.execute(update(RECALL_VECTORS).where(v.source_id == "a001").values(vector=b""))
        conn.execute(
            update(RECALL_VECTORS).where(v.source_id == "a002").values(vector=pack(unit_vector(5)))
        )
        conn.execute(delete(RECALL_VECTORS).where(v.source_id == "a003"))
    after = _embeddings(vec_db)
    assert after["a001"][1] is None
    assert _as_bytes(after["a002"][1] or "") == pack(unit_vector(5))
    assert "a003" not in after

    removed = forget_user(vec_db, "ana")
    assert removed["recall_vectors"] == len([r for r in rows if r[0] == "ana"]) - 1
    assert set(_embeddings(vec_db)) == {sid for person, sid, _ in rows if person == "bea"}


def test_enabling_fills_the_column_of_the_vectors_already_there(plain_db: Database) -> None:
    """A database whose vectors were stored before pgvector was there: the next start adds the
    column, filled, and searches by it; a second start changes nothing."""
    rows = _rows()
    store_vectors(plain_db, rows)
    with plain_db.read() as conn:
        assert pgvector_in(conn) is None
        before = InProcessIndex().nearest(conn, "ana", MODEL, "turn", unit_vector(99), 50)

    search = PostgresVectors()
    assert isinstance(search.index, InProcessIndex)  # until the database is open
    where = search.open(plain_db)

    assert where.startswith("in PostgreSQL, by pgvector 0.")
    assert isinstance(search.index, PgVectorIndex)
    stored = _embeddings(plain_db)
    assert all(_as_bytes(as_text) == blob for blob, as_text in stored.values() if as_text)
    assert sum(as_text is not None for _, as_text in stored.values()) == len(rows) - 1
    with plain_db.read() as conn:
        found = search.nearest(conn, "ana", MODEL, "turn", unit_vector(99), 50)
    assert [sid for sid, _ in found] == [sid for sid, _ in before]
    assert PostgresVectors().open(plain_db) == where


def test_the_column_is_computed_with_an_empty_search_path_as_pg_restore_loads_rows(
    vec_db: Database,
) -> None:
    store_vectors(vec_db, [("ana", "a", unit_vector(1))])
    with vec_db.write() as conn:
        conn.execute(text("SET LOCAL search_path = ''"))
        conn.execute(
            text(
                "INSERT INTO public.recall_vectors (source_kind, source_id, model, user_id, "
                "dims, vector, created_at) SELECT source_kind, 'b', model, user_id, dims, "
                "vector, created_at FROM public.recall_vectors"
            )
        )
    stored = _embeddings(vec_db)
    assert _as_bytes(stored["b"][1] or "") == pack(unit_vector(1))


def test_an_extension_in_a_schema_off_the_search_path_is_used_there(
    pgvector_server: str, pgvector_url: str
) -> None:
    """A database whose administrator put pgvector in a schema of its own (as some hosted
    PostgreSQL services do), not on the application's search path."""
    with psycopg.connect(pgvector_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("CREATE SCHEMA extensions")
        admin.execute("CREATE EXTENSION vector SCHEMA extensions")
    db = _open(pgvector_url)
    try:
        rows = [("ana", f"a{n}", unit_vector(n)) for n in range(20)]
        store_vectors(db, rows)
        search = PostgresVectors()
        assert search.open(db).startswith("in PostgreSQL, by pgvector")
        with db.read() as conn:
            assert conn.execute(text("SHOW search_path")).scalar() == '"$user", public'
            found = search.nearest(conn, "ana", MODEL, "turn", unit_vector(3), 5)
            expected = InProcessIndex().nearest(conn, "ana", MODEL, "turn", unit_vector(3), 5)
        assert [sid for sid, _ in found] == [sid for sid, _ in expected]
        assert found[0][0] == "a3"
    finally:
        db.stop()


# SQLAlchemy knows no type "vector" and says so when it reads the table; include_object then
# leaves the column out (make_revision silences the same warning)
@pytest.mark.filterwarnings("ignore:Did not recognize type 'vector':sqlalchemy.exc.SAWarning")
def test_the_models_still_match_the_database_with_the_column(vec_db: Database) -> None:
    with vec_db.engine.connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": outside_the_models}),
            SQLModel.metadata,
        )
    assert differences == []


def test_a_database_that_may_not_create_the_extension_is_left_as_it_was(
    pgvector_server: str, pgvector_url: str
) -> None:
    """A role that is not a superuser cannot create pgvector (it is not a trusted
    extension): recall compares in process and the start-up log says what to do."""
    name = make_url(pgvector_url).database
    role = f"app_{name}"
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    with psycopg.connect(pgvector_url.replace("+psycopg", ""), autocommit=True) as owner:
        owner.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    as_role = make_url(pgvector_url).set(username=role).render_as_string(hide_password=False)
    db = _open(as_role)
    try:
        search = PostgresVectors()
        where = search.open(db)
        assert isinstance(search.index, InProcessIndex)
        assert "could not create it" in where and "CREATE EXTENSION vector" in where
        with db.read() as conn:
            assert pgvector_in(conn) is None
            assert conn.execute(text("SELECT count(*) FROM pg_extension")).scalar() == 1
    finally:
        db.stop()
        with psycopg.connect(pgvector_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE "{role}"')


# -- the project's PostgreSQL 15, without pgvector -----------------------------------------


@pytest.mark.postgres
def test_a_postgresql_without_pgvector_compares_in_process_saying_why(
    postgres_database: str,
) -> None:
    db = _open(postgres_database)
    try:
        with db.read() as conn:
            available = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
        if available is not None:  # CI's PostgreSQL 15 has none: there it must run
            skip_unless_ci("this PostgreSQL has pgvector: the tests above cover it")
        search = vector_search_for(False, sqlite3)
        where = search.open(db)
        assert isinstance(search.index, PostgresVectors)
        assert isinstance(search.index.index, InProcessIndex)
        assert where == "in process (this PostgreSQL has no pgvector " + (
            "(its vector extension is not installed))"
        )
        with db.read() as conn:
            assert pgvector_in(conn) is None
            columns = conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'recall_vectors'"
                )
            ).scalars()
            assert "embedding" not in set(columns)
    finally:
        db.stop()


# -- the runtime ---------------------------------------------------------------------------


async def test_a_runtime_on_postgresql_with_pgvector_recalls_by_meaning_through_it(
    pgvector_url: str,
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Embeddings on, on a PostgreSQL with pgvector: the start enables it, the worker's
    vectors are searched by it with the results in process gives, and forget takes them."""
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
        settings = fake.settings({"url": pgvector_url}, tmp_path / "bots")
        caplog.set_level("INFO", logger="mnemobot.runtime.pipeline.runtime")
        runtime = build_runtime(settings, clock=clock)
        await runtime.start()
        try:
            index = runtime.recall.index
            assert isinstance(index, PostgresVectors)
            assert isinstance(index.index, PgVectorIndex)
            assert "compares vectors in PostgreSQL, by pgvector" in caplog.text
            chat = Chat(runtime, bot="helper", user="ana")
            for line in ("the weather was lovely", "I bought a blue automobile", "bye"):
                await chat.say(line)
                clock.advance(seconds=1)  # each line its own moment: the line after is known
            await chat.say("/end")
            ana = await chat.user_id()
            await runtime.episode_worker.run_until_idle()
            vector = await runtime.recall.query_vector("which car?")
            assert vector is not None
            found = await runtime.db.run(
                runtime.recall.search, ana, "which car?", limit=3, query_vector=vector
            )
            with runtime.db.read() as conn:
                by_pgvector = index.nearest(conn, ana, "openai/fake-embed", "turn", vector, 10)
                in_process = InProcessIndex().nearest(
                    conn, ana, "openai/fake-embed", "turn", vector, 10
                )
            stored = _embeddings(runtime.db)
        finally:
            await runtime.stop()

        # the reply said before the line is embedded with it (the same words): the two tie
        turns = [f for f in found if f.kind == "turn"]
        assert {f.text for f in turns[:2]} == {"I bought a blue automobile", "ok"}
        assert turns[0].similarity and turns[0].similarity == turns[1].similarity
        assert len(by_pgvector) >= 4
        assert [sid for sid, _ in by_pgvector] == [sid for sid, _ in in_process]
        assert stored and all(
            as_text and _as_bytes(as_text) == blob for blob, as_text in stored.values()
        )

        db = _open(pgvector_url)
        try:
            removed = forget_user(db, ana)
            assert removed["recall_vectors"] == len(stored)
            with db.read() as conn:
                assert conn.execute(select(RECALL_VECTORS)).all() == []
        finally:
            db.stop()
