"""PostgreSQL's recall indexes written through, not through a pending list

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000

A GIN index takes new rows into an unsorted pending list by default (``fastupdate``) and
merges it at the next VACUUM, or when it reaches ``gin_pending_list_limit`` (4 MB): until
then every search reads the whole list. Recall searches on every prompt and writes a few rows
a turn, so the list is the wrong trade here: after 100,000 lines written, finding one rare
word read 516 index pages and took 2.7 ms, against 4 pages and 0.1 ms once merged (and a
prompt makes several such searches). The recall indexes now take each row as it is written,
and the list they hold is merged now. SQLite's FTS5 has nothing of the kind.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = [
    f"ix_{table}_search"
    for table in ("turns", "episodes", "user_memory", "fact_history", "user_memories")
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (fastupdate)")
