"""backchannel_outbox: back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0)
waiting for, or done with, their POST to a client's backchannel_logout_uri

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backchannel_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backchannel_outbox")),
        sa.UniqueConstraint("jti", name=op.f("uq_backchannel_outbox_jti")),
    )
    op.create_index(
        op.f("ix_backchannel_outbox_client_id"), "backchannel_outbox", ["client_id"], unique=False
    )
    op.create_index(
        "ix_backchannel_outbox_status_next", "backchannel_outbox", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_backchannel_outbox_status_next", table_name="backchannel_outbox")
    op.drop_index(op.f("ix_backchannel_outbox_client_id"), table_name="backchannel_outbox")
    op.drop_table("backchannel_outbox")
