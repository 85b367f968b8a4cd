"""mail_outbox.subject as Text: it holds the sealed subject (enc1:..., longer than the clear one)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "subject", existing_type=sa.String(length=255), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    # Fails on PostgreSQL while a sealed subject longer than 255 characters is queued; and the
    # code of revision 0001 cannot open sealed rows anyway (it would send them as they are).
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "subject", existing_type=sa.Text(), type_=sa.String(length=255), existing_nullable=False
        )
