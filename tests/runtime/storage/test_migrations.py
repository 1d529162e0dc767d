"""The migrations build exactly the schema the tables describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from mnemobot.runtime.storage.database import Database
from mnemobot.runtime.storage.fulltext import outside_the_models
from mnemobot.runtime.storage.migrate import HEAD, current_revision, script_head
from sqlmodel import SQLModel


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
