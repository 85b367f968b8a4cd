"""user_locale: each user's language for mail (users.locale, and pending_signups.locale from
the sign-up's Accept-Language), and sign_in_devices: keyed hashes of the clients each user
signed in from, for new-device notices

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Users from before: the default language (i18n.DEFAULT_LANG), like imported users.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=8), nullable=False, server_default="zh-CN"))
    with op.batch_alter_table("pending_signups") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
    op.create_table(
        "sign_in_devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_devices")),
    )
    op.create_index(
        "ix_sign_in_devices_user_device", "sign_in_devices", ["user_id", "device_hash"], unique=False
    )
    op.create_index(
        op.f("ix_sign_in_devices_last_seen_at"), "sign_in_devices", ["last_seen_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_devices_last_seen_at"), table_name="sign_in_devices")
    op.drop_index("ix_sign_in_devices_user_device", table_name="sign_in_devices")
    op.drop_table("sign_in_devices")
    with op.batch_alter_table("pending_signups") as batch:
        batch.drop_column("locale")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
