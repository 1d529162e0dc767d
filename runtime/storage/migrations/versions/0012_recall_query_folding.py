"""a query folded by the recall index's own expression, on PostgreSQL

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 01:00:00.000000

PostgreSQL's recall index folds text with ``unaccent(lower(...))`` where the unaccent
extension could be created at 0005 (``mnemobot_search_vector``), which takes accents off
Greek letters and "ё" too; SQLite's FTS5 takes them off Latin letters only. A query is now
folded on the Python side as SQLite's index folds (``storage.folding``) and, on PostgreSQL,
again in the database by the index's own expression: ``mnemobot_search_query`` is
``mnemobot_search_vector`` with ``to_tsquery`` in place of ``to_tsvector``, so the two cannot
disagree. Nothing is re-indexed. SQLite: nothing to do.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_INDEXED = "to_tsvector('simple', "


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    body = bind.exec_driver_sql(
        "SELECT prosrc FROM pg_proc WHERE proname = 'mnemobot_search_vector' "
        "AND pronamespace = current_schema()::regnamespace"
    ).scalar_one()
    if _INDEXED not in body:
        raise RuntimeError(f"mnemobot_search_vector is not what 0005 made: {body!r}")
    query = body.replace(_INDEXED, "to_tsquery('simple', ")
    op.execute(
        "CREATE OR REPLACE FUNCTION mnemobot_search_query(text) RETURNS tsquery "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $${query}$$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS mnemobot_search_query(text)")
