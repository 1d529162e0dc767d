"""recall vectors of facts, their earlier values and free-text memories

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00.000000

``recall_vectors.source_kind`` gains ``fact`` (``user_memory``), ``earlier_fact``
(``fact_history``) and ``memory`` (``user_memories``); the column is free text, so only the
triggers are new. As 0006's for turns and episodes, they delete a row's vectors in the same
transaction as the change when the row goes (forget, a deleted key, TTL expiry, retention,
a merge's losing value) or the text its vector was made from changes (a fact's key or value,
a memory's text); the filler then embeds the new text. PostgreSQL reuses 0006's
``mnemobot_drop_vectors``. Rows already in the database simply have no vector yet: the episode
worker's catch-up pass embeds them.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# source table -> (source_kind, the columns whose change makes the vector stale)
SOURCES = {
    "user_memory": ("fact", ("key", "value")),
    "fact_history": ("earlier_fact", ("key", "value")),
    "user_memories": ("memory", ("memory",)),
}


def _sqlite_triggers() -> None:
    for table, (kind, columns) in SOURCES.items():
        drop = f"DELETE FROM recall_vectors WHERE source_kind = '{kind}' AND source_id = old.id;"
        changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER {table}_vectors_delete AFTER DELETE ON {table} BEGIN {drop} END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_vectors_update AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} WHEN {changed} BEGIN {drop} END"
        )


def _postgresql_triggers() -> None:
    for table, (kind, columns) in SOURCES.items():
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER {table}_vectors_delete AFTER DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mnemobot_drop_vectors('{kind}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_vectors_update AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION mnemobot_drop_vectors('{kind}')"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (kind, _) in SOURCES.items():
        for event in ("delete", "update"):
            if postgresql:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_vectors_{event} ON {table}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_vectors_{event}")
        op.execute(f"DELETE FROM recall_vectors WHERE source_kind = '{kind}'")
