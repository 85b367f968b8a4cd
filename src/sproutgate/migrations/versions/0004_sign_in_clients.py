"""sign_in_clients: client addresses each user signed in from, for the lockout rule

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_clients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_clients_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_clients")),
    )
    op.create_index("ix_sign_in_clients_user_ip", "sign_in_clients", ["user_id", "ip"], unique=False)
    op.create_index(
        op.f("ix_sign_in_clients_last_seen_at"), "sign_in_clients", ["last_seen_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_clients_last_seen_at"), table_name="sign_in_clients")
    op.drop_index("ix_sign_in_clients_user_ip", table_name="sign_in_clients")
    op.drop_table("sign_in_clients")
