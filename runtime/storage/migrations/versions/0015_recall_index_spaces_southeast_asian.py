"""the recall index takes each Thai, Lao, Khmer and Burmese character as a word of its own

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:00:00.000000

Thai, Lao, Khmer and Burmese are written without spaces between words, as Chinese and
Japanese are (0014): a phrase was one word. Now each of their letters, with the vowel signs
and tone marks written on it, is indexed as a word of its own (``storage.folding.spaced``),
and a query searches the pairs of them it holds. SQLite: the triggers call
``mnemobot_spaced_2`` (Chinese, Japanese and these four; 0014's ``mnemobot_spaced`` stays
registered for a database on its way up) and every row is indexed again. PostgreSQL: the
index's and the query's expressions space them too, and the rows holding them are written
again so their generated ``search`` columns are.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
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
# As PostgreSQL's regular expressions write them: 0014's class, and the four scripts' letters
# and marks (Unicode 14; storage.folding.SEA_LETTERS and SEA_MARKS, which must agree)
CJK = (
    r"\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    r"\U00020000-\U0003134f"
)
LETTERS = (
    r"\u0e01-\u0e30\u0e32-\u0e33\u0e40-\u0e46\u0e50-\u0e59\u0e81-\u0e82\u0e84\u0e86-\u0e8a"
    r"\u0e8c-\u0ea3\u0ea5\u0ea7-\u0eb0\u0eb2-\u0eb3\u0ebd\u0ec0-\u0ec4\u0ec6\u0ed0-\u0ed9"
    r"\u0edc-\u0edf\u1000-\u102a\u103f-\u1049\u1050-\u1055\u105a-\u105d\u1061\u1065-\u1066"
    r"\u106e-\u1070\u1075-\u1081\u108e\u1090-\u1099\u1780-\u17b3\u17d7\u17dc\u17e0-\u17e9"
    r"\u17f0-\u17f9"
)
MARKS = (
    r"\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd\u102b-\u103e"
    r"\u1056-\u1059\u105e-\u1060\u1062-\u1064\u1067-\u106d\u1071-\u1074\u1082-\u108d\u108f"
    r"\u109a-\u109d\u17b4-\u17d3\u17dd"
)
BEFORE = f"'([{CJK}])'"  # 0014's pattern
AFTER = f"'([{CJK}]|[{LETTERS}][{MARKS}]*)'"


def _values(row: str, columns: tuple[str, ...], function: str) -> str:
    return ", ".join(f"{function}({row}.{c})" for c in columns)


def _sqlite(function: str) -> None:
    for table, columns in SOURCES.items():
        fts = f"{table}_fts"
        cols = ", ".join(columns)
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
        old, new = _values("old", columns, function), _values("new", columns, function)
        delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old})"
        insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new})"
        op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert}; END")
        op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete}; END")
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE {UPDATED_OF.get(table, '')}ON {table} "
            f"BEGIN {delete}; {insert}; END"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('delete-all')")
        read = ", ".join(f"{function}({c})" for c in columns)
        op.execute(f"INSERT INTO {fts}(rowid, {cols}) SELECT rowid, {read} FROM {table}")


def _postgresql(before: str, after: str) -> None:
    bind = op.get_bind()
    for function in ("mnemobot_search_vector", "mnemobot_search_query"):
        body, returns = bind.exec_driver_sql(
            "SELECT prosrc, pg_get_function_result(oid) FROM pg_proc "
            f"WHERE proname = '{function}' AND pronamespace = current_schema()::regnamespace"
        ).one()
        if before not in body:
            raise RuntimeError(f"{function} is not what 0014 made: {body!r}")
        op.execute(
            f"CREATE OR REPLACE FUNCTION {function}(text) RETURNS {returns} "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $${body.replace(before, after)}$$"
        )
    for table, columns in SOURCES.items():  # a stored generated column is computed on write
        held = " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns)
        op.execute(f"UPDATE {table} SET {columns[0]} = {columns[0]} WHERE {held} ~ '[{LETTERS}]'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql(BEFORE, AFTER)
    else:
        _sqlite("mnemobot_spaced_2")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql(AFTER, BEFORE)
    else:
        _sqlite("mnemobot_spaced")
