"""indexes for the janitor's age limits on the inbox and the turn log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00.000000

``[janitor]`` purges handled rows by age, a batch per pass. The turn log had no index on its
age; inbox rows whose payload is still held are found through a partial index, so the rows
already cleared (kept a while longer for their event id) are not scanned again each pass.
Sent replies and old inbox rows are found through the existing ``(status, time)`` indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HOLDS_PAYLOAD = sa.text("payload IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_turns_created_at", "turns", ["created_at"], unique=False)
    op.create_index(
        "ix_inbox_payload_kept",
        "inbox",
        ["handled_at"],
        unique=False,
        sqlite_where=_HOLDS_PAYLOAD,
        postgresql_where=_HOLDS_PAYLOAD,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_payload_kept", table_name="inbox")
    op.drop_index("ix_turns_created_at", table_name="turns")
