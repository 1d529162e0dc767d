"""the recall index keeps a word's vowel signs and other marks in the word (SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:00:00.000000

FTS5's unicode61 tokenizer took only letters, digits and private-use characters as parts of a
word (categories L*, N*, Co), so it split a word at every combining mark: Hindi "हिन्दी" was
the single letters "ह", "न", "द", too short to search, and so were Bengali, Tamil and every
other script whose vowel signs are marks, and Arabic or Hebrew written with its vowel points.
The index is made again with marks (M*) as parts of words, as PostgreSQL's parser already
keeps them. Accents typed apart from a Latin letter are still taken off (``remove_diacritics
2``). The triggers that keep the index are unchanged (they name the tables, made again here
under the same names), and every row is indexed again. PostgreSQL: nothing to do.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
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
TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
BEFORE = "unicode61 remove_diacritics 2"  # 0005's and 0008's


def _index_again(tokenizer: str) -> None:
    op.execute("DROP TABLE IF EXISTS turns_fts_terms")
    for table, columns in SOURCES.items():
        fts = f"{table}_fts"
        op.execute(f"DROP TABLE {fts}")
        op.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(columns)}, content='{table}', "
            f"content_rowid='rowid', tokenize=\"{tokenizer}\", prefix='4')"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    op.execute("CREATE VIRTUAL TABLE turns_fts_terms USING fts5vocab(turns_fts, 'row')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _index_again(TOKENIZER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _index_again(BEFORE)
