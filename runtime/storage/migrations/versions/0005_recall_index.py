"""full-text recall index over turns, episodes, user memory and fact history

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:00:00.000000

SQLite: an FTS5 table per source (external content on the source's rowid, kept by triggers
in the same transaction as the write). PostgreSQL: a generated ``search`` tsvector column per
source with a GIN index. Both are language-neutral: Unicode word splitting, lowercase, accents
removed, no stemming and no stop words. Existing rows are indexed here.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# source table -> the columns whose words are searched
SOURCES = {
    "turns": ("text",),
    "episodes": ("summary", "topics"),
    "user_memory": ("key", "value"),
    "fact_history": ("key", "value"),
}
TOKENIZER = "unicode61 remove_diacritics 2"


def _sqlite() -> None:
    for table, columns in SOURCES.items():
        fts = f"{table}_fts"
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        op.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
            f"content_rowid='rowid', tokenize='{TOKENIZER}', prefix='4')"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
            f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    # How many lines hold a word: recall leaves out words too common to tell lines apart.
    op.execute("CREATE VIRTUAL TABLE turns_fts_terms USING fts5vocab(turns_fts, 'row')")


def _postgresql() -> None:
    bind = op.get_bind()
    # unaccent is a trusted extension (PostgreSQL 13+): a database owner may create it. Where
    # it cannot be created, words keep their accents (the query side folds them the same way).
    has_unaccent = bind.exec_driver_sql(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'unaccent'"
    ).scalar()
    folded = "lower($1)"
    if has_unaccent:
        op.execute("SAVEPOINT mnemobot_unaccent")
        try:
            op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
            folded = "public.unaccent('public.unaccent'::regdictionary, lower($1))"
            op.execute("RELEASE SAVEPOINT mnemobot_unaccent")
        except Exception:
            op.execute("ROLLBACK TO SAVEPOINT mnemobot_unaccent")
    # unaccent() is not IMMUTABLE (its dictionary could change); index expressions must be.
    op.execute(
        "CREATE OR REPLACE FUNCTION mnemobot_search_vector(text) RETURNS tsvector "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_tsvector('simple', {folded}) $$"
    )
    for table, columns in SOURCES.items():
        text = " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns)
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN search tsvector "
            f"GENERATED ALWAYS AS (mnemobot_search_vector({text})) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql()
    else:
        _sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SOURCES:
            op.execute(f"ALTER TABLE {table} DROP COLUMN search")
        op.execute("DROP FUNCTION IF EXISTS mnemobot_search_vector(text)")
    else:
        op.execute("DROP TABLE IF EXISTS turns_fts_terms")
        for table in SOURCES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{event}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
