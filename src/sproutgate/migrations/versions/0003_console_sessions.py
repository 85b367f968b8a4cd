"""admin_console_sessions: admin console sign-ins kept on the server (issue 11, item 7)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:36:41.345720
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sproutgate.storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_console_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("admin_token_mac", sa.String(length=64), nullable=False),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_console_sessions_token_hash")),
    )
    with op.batch_alter_table("admin_console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_admin_console_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    # Every console session ends with the table; the code of revision 0002 signs its own cookies.
    with op.batch_alter_table("admin_console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_console_sessions_expires_at"))
    op.drop_table("admin_console_sessions")
