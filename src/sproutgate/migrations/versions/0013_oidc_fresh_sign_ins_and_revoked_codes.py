"""oidc_sign_in_demands: fresh sign-ins that authorization requests asked for (prompt=login,
max_age), enforced on every request with the same binding (OpenID Connect Core §3.1.2.1); and
oauth_authorization_codes.disconnected_at: codes whose app was disconnected before they were
redeemed (RFC 6749 §10.5)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_sign_in_demands",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_in_after", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_oidc_sign_in_demands")),
    )
    op.create_index(
        op.f("ix_oidc_sign_in_demands_expires_at"), "oidc_sign_in_demands", ["expires_at"], unique=False
    )
    with op.batch_alter_table("oauth_authorization_codes") as batch:
        batch.add_column(sa.Column("disconnected_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_authorization_codes") as batch:
        batch.drop_column("disconnected_at")
    op.drop_index(op.f("ix_oidc_sign_in_demands_expires_at"), table_name="oidc_sign_in_demands")
    op.drop_table("oidc_sign_in_demands")
