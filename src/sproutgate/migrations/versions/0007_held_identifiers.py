"""held_identifiers: keyed digests of the addresses and account names of deleted accounts,
unavailable for sign-up until their hold ends

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_identifiers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("held_until", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_identifiers")),
        sa.UniqueConstraint("digest", name=op.f("uq_held_identifiers_digest")),
    )
    op.create_index(op.f("ix_held_identifiers_held_until"), "held_identifiers", ["held_until"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_held_identifiers_held_until"), table_name="held_identifiers")
    op.drop_table("held_identifiers")
