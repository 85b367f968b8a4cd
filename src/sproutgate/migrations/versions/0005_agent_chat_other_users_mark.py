"""agent_chats.held_other_users_content: set once a tool returned other users' content, never cleared

Existing conversations are marked when their stored history still holds a search_users result
naming anyone but their owner (what the agent checked before this revision). Conversations whose
such results were already trimmed away cannot be told apart and start unmarked.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00.000000
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A user id inside a stored search result (the JSON of the result is itself a JSON string in the
# column, so its quotes may be escaped). Kept here, not imported: a migration must not change
# when application code does.
_ID = re.compile(r'\\?"id\\?": \\?"([0-9a-fA-F-]{36})\\?"')
# The frame search results are returned in (the instructions name the tag too, without "source").
_FRAME = "%untrusted_user_content source=%"


def upgrade() -> None:
    with op.batch_alter_table("agent_chats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held_other_users_content", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    bind = op.get_bind()
    chats = sa.table(
        "agent_chats",
        sa.column("id", sa.String()),
        sa.column("held_other_users_content", sa.Boolean()),
    )
    rows = bind.execute(
        sa.text(
            "SELECT id, user_id, CAST(messages AS TEXT) FROM agent_chats "
            "WHERE CAST(messages AS TEXT) LIKE :frame"
        ),
        {"frame": _FRAME},
    ).all()
    marked = [chat_id for chat_id, owner, text in rows if set(_ID.findall(text or "")) - {owner}]
    for start in range(0, len(marked), 500):
        batch = marked[start : start + 500]
        bind.execute(sa.update(chats).where(chats.c.id.in_(batch)).values(held_other_users_content=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("agent_chats", schema=None) as batch_op:
        batch_op.drop_column("held_other_users_content")
