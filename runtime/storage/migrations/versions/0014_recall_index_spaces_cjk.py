"""the recall index takes each Chinese and Japanese character as a word of its own

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 03:00:00.000000

Chinese and Japanese are written without spaces between words, and the index split text only
at spaces and punctuation: a whole phrase was one word, found only by a query starting with
it. Now each of their characters is indexed as a word (``storage.folding.spaced``) and a query
searches the pairs of characters it holds (``recall.query``), as CJK full-text search usually
does. SQLite: the triggers pass each indexed column through ``mnemobot_spaced``, a function
every connection of the runtime registers (storage.database), and every row is indexed again
(FTS5's own 'rebuild' would read the text unspaced: ``FullText.rebuild`` does the same as here).
PostgreSQL: the index's expression and the query's (0012) space them, and the rows holding
such characters are written again so their generated ``search`` columns are.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# source table -> the columns whose words are searched (0005, 0008)
SOURCES = {
    "turns": ("text",),
    "episodes": ("summary", "topics"),
    "user_memory": ("key", "value"),
    "fact_history": ("key", "value"),
    "user_memories": ("memory", "topics"),
}
UPDATED_OF = {"turns": "OF text "}  # 0011: the turns' trigger fires only when the text changes
SPACED = "mnemobot_spaced"
# storage.folding.SPACED_SCRIPTS, as PostgreSQL's regular expressions write it
CLASS = (
    r"\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    r"\U00020000-\U0003134f"
)
_FOLDED_ARGUMENT = "lower($1)"


def _values(row: str, columns: tuple[str, ...], spaced: bool) -> str:
    return ", ".join(f"{SPACED}({row}.{c})" if spaced else f"{row}.{c}" for c in columns)


def _sqlite_triggers(spaced: bool) -> None:
    for table, columns in SOURCES.items():
        fts = f"{table}_fts"
        cols = ", ".join(columns)

        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
        old, new = _values("old", columns, spaced), _values("new", columns, spaced)
        delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old})"
        insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new})"
        op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert}; END")
        op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete}; END")
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE {UPDATED_OF.get(table, '')}ON {table} "
            f"BEGIN {delete}; {insert}; END"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('delete-all')")
        read = ", ".join(f"{SPACED}({c})" if spaced else c for c in columns)
        op.execute(f"INSERT INTO {fts}(rowid, {cols}) SELECT rowid, {read} FROM {table}")


def _postgresql(spaced: bool) -> None:
    bind = op.get_bind()
    argument = f"regexp_replace($1, '([{CLASS}])', ' \\1 ', 'g')"
    for function in ("mnemobot_search_vector", "mnemobot_search_query"):
        row = bind.exec_driver_sql(
            "SELECT prosrc, pg_get_function_result(oid) FROM pg_proc "
            f"WHERE proname = '{function}' AND pronamespace = current_schema()::regnamespace"
        ).one()
        body, returns = row
        before, after = (_FOLDED_ARGUMENT, f"lower({argument})")
        if not spaced:
            before, after = after, before
        if before not in body:
            raise RuntimeError(f"{function} is not what 0005 and 0012 made: {body!r}")
        op.execute(
            f"CREATE OR REPLACE FUNCTION {function}(text) RETURNS {returns} "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $${body.replace(before, after)}$$"
        )
    for table, columns in SOURCES.items():  # a stored generated column is computed on write
        held = " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns)
        op.execute(f"UPDATE {table} SET {columns[0]} = {columns[0]} WHERE {held} ~ '[{CLASS}]'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql(spaced=True)
    else:
        _sqlite_triggers(spaced=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql(spaced=False)
    else:
        _sqlite_triggers(spaced=False)
