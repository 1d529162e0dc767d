"""a transcript line's place in its session, stored with it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 10:00:00.000000

Recall reads the best hits of a search with the lines said right before and after them
(``recall.around``). Without a stored place, each neighbour was found by seeks on
(session, time, seq, id): four subqueries a hit, ~2 ms a prompt for 40 hits at 100,000 lines.
``turns.line`` numbers a session's lines from 0 in the order they were said, so a hit's
neighbours are the rows at ``line - 1`` and ``line + 1``: one read by the new
(session_id, line) index. The turn's commit numbers new lines; lines already held are
numbered here, in the order recall placed them before (time, seq, id).

On SQLite the FTS5 index's update trigger fired on any change to a line, and would have
re-indexed every line for this number: it now fires only when the text changes (the one
column it indexes), as the vectors' triggers already did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_FTS_UPDATE = (
    "CREATE TRIGGER turns_fts_update AFTER UPDATE {of}ON turns BEGIN "
    "INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO turns_fts(rowid, text) VALUES (new.rowid, new.text); END"
)
_NUMBERED = (
    "UPDATE turns SET line = numbered.line FROM ("
    "SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY created_at, seq, id) - 1 "
    "AS line FROM turns) AS numbered WHERE numbered.id = turns.id"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS turns_fts_update")
        op.execute(_FTS_UPDATE.format(of="OF text "))
    op.add_column("turns", sa.Column("line", sa.Integer(), nullable=True))
    op.execute(_NUMBERED)
    op.create_index("ix_turns_session_line", "turns", ["session_id", "line"])


def downgrade() -> None:
    op.drop_index("ix_turns_session_line", table_name="turns")
    op.execute("ALTER TABLE turns DROP COLUMN line")  # SQLite 3.35+, in place (FTS keeps rowids)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS turns_fts_update")
        op.execute(_FTS_UPDATE.format(of=""))
