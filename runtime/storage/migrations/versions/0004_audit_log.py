"""audit log of admin API writes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from mnemobot.runtime.storage.tables import json_type

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("subject_user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("bot", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("details", json_type(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_log_subject_user_id"), ["subject_user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_subject_user_id"))
        batch_op.drop_index("ix_audit_log_at")
    op.drop_table("audit_log")
