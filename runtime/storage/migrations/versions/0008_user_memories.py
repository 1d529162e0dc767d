"""free-text user memories (seed 004's UserMemory), indexed for recall

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:00:00.000000

A table of short texts about a person beside key/value user memory: the text (``memory``),
its topics, the input it came from, optional feedback, and where the last change came from
(source, bot, session). Recall searches the text and the topics through the same index as
0005's sources: an FTS5 external-content table kept by triggers on SQLite, a generated
``search`` tsvector with a GIN index on PostgreSQL (``mnemobot_search_vector`` from 0005).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from mnemobot.runtime.storage.tables import json_type

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "user_memories"
COLUMNS = ("memory", "topics")  # the words recall searches
TOKENIZER = "unicode61 remove_diacritics 2"  # as 0005's


def _sqlite_index() -> None:
    fts = f"{TABLE}_fts"
    cols = ", ".join(COLUMNS)
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    old = ", ".join(f"old.{c}" for c in COLUMNS)
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{TABLE}', "
        f"content_rowid='rowid', tokenize='{TOKENIZER}', prefix='4')"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {TABLE} BEGIN "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {TABLE} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {TABLE} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END"
    )


def _postgresql_index() -> None:
    text = " || ' ' || ".join(f"coalesce({c}::text, '')" for c in COLUMNS)
    op.execute(
        f"ALTER TABLE {TABLE} ADD COLUMN search tsvector "
        f"GENERATED ALWAYS AS (mnemobot_search_vector({text})) STORED"
    )
    op.execute(f"CREATE INDEX ix_{TABLE}_search ON {TABLE} USING gin (search)")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("memory", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("topics", json_type(), nullable=True),
        sa.Column("input", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("feedback", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("bot", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index("ix_user_memories_recent", ["user_id", "updated_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_index()
    else:
        _sqlite_index()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_fts_{event}")
        op.execute(f"DROP TABLE IF EXISTS {TABLE}_fts")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index("ix_user_memories_recent")
    op.drop_table(TABLE)
