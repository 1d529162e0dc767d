"""The migrations build exactly the schema the tables describe, on both databases."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.migrate import (
    HEAD,
    current_revision,
    ensure_schema,
    outside_the_models,
    script_head,
)
from tests.conftest import PG_ADMIN_URL, _pg_url
from tests.runtime.storage.at_once import at_once


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": outside_the_models}),
            SQLModel.metadata,
        )
    assert differences == []
    assert current_revision(database) == HEAD


def test_json_values_are_jsonb_on_postgresql(database: Database) -> None:
    from sqlalchemy import text

    if database.dialect != "postgresql":
        assert database.dialect == "sqlite"
        return
    with database.engine.connect() as conn:
        kinds = dict(
            conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type FROM "
                    "information_schema.columns WHERE column_name IN ('value', 'payload')"
                )
            ).all()
        )
    assert kinds["user_memory.value"] == "jsonb"
    assert kinds["inbox.payload"] == "jsonb"


def test_head_constant_is_alembics_head() -> None:
    assert script_head() == HEAD


def _empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"mnemobot_empty_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, as on a deployment's first start."""
    yield from _empty_database(request.param, tmp_path)


def _start_worker(url: str, gate: Any, results: Any) -> None:
    """One worker's start-up, in a process of its own (Alembic's context is process-global)."""
    db = Database(url)
    db.start()
    try:
        gate.wait()
        ensure_schema(db)
        results.put(current_revision(db))
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        db.stop()


def test_workers_starting_at_once_on_an_empty_database_all_start(empty_url: str) -> None:
    """Issue 14: one of several workers starting together crashed on pg_type_typname_nsp_index."""
    starters = 4
    revisions = at_once(_start_worker, (empty_url,), starters, start="spawn")
    assert revisions == [HEAD] * starters
    check = Database(empty_url)
    check.start()
    try:
        test_migrated_schema_matches_the_tables(check)
    finally:
        check.stop()
