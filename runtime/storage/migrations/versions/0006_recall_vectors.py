"""recall vectors: embeddings of turns and episodes for optional semantic recall

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:00:00.000000

One row per (source kind, source row, model): the vector as little-endian float32 bytes,
normalised, compared in process (no extension needed). Triggers delete a row's vectors when
the row goes (forget, retention, roll-up) or its text changes (the catch-up pass embeds it
again), in the same transaction as the change, like the full-text index of 0005.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# source table -> (source_kind, the column whose change makes the vector stale)
SOURCES = {"turns": ("turn", "text"), "episodes": ("episode", "summary")}


def _sqlite_triggers() -> None:
    for table, (kind, column) in SOURCES.items():
        drop = f"DELETE FROM recall_vectors WHERE source_kind = '{kind}' AND source_id = old.id;"
        op.execute(
            f"CREATE TRIGGER {table}_vectors_delete AFTER DELETE ON {table} BEGIN {drop} END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_vectors_update AFTER UPDATE OF {column} ON {table} "
            f"WHEN old.{column} IS NOT new.{column} BEGIN {drop} END"
        )


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION mnemobot_drop_vectors() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "DELETE FROM recall_vectors WHERE source_kind = TG_ARGV[0] AND source_id = OLD.id; "
        "RETURN NULL; END $$"
    )
    for table, (kind, column) in SOURCES.items():
        op.execute(
            f"CREATE TRIGGER {table}_vectors_delete AFTER DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mnemobot_drop_vectors('{kind}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_vectors_update AFTER UPDATE OF {column} ON {table} "
            f"FOR EACH ROW WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) "
            f"EXECUTE FUNCTION mnemobot_drop_vectors('{kind}')"
        )


def upgrade() -> None:
    op.create_table(
        "recall_vectors",
        sa.Column("source_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_kind", "source_id", "model"),
    )
    with op.batch_alter_table("recall_vectors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recall_vectors_person", ["user_id", "model", "source_kind"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    for table in SOURCES:
        for event in ("delete", "update"):
            if op.get_bind().dialect.name == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS {table}_vectors_{event} ON {table}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_vectors_{event}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mnemobot_drop_vectors()")
    with op.batch_alter_table("recall_vectors", schema=None) as batch_op:
        batch_op.drop_index("ix_recall_vectors_person")
    op.drop_table("recall_vectors")
