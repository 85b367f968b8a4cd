"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:46:15.211646
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sproutgate.storage.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("to_addr", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_outbox_message_id")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mail_outbox_status_next", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_outbox_to_addr"), ["to_addr"], unique=False)

    op.create_table(
        "pending_signups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=True),
        sa.Column("account_lower", sa.String(length=32), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("redirect_to", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_signups")),
        sa.UniqueConstraint("email", name=op.f("uq_pending_signups_email")),
    )
    with op.batch_alter_table("pending_signups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_signups_account_lower"), ["account_lower"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_signups_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("account_lower", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("username_lower", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sprout_coins", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("avatar_url", sa.String(length=2048), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("email_confirmed_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("account_lower", name=op.f("uq_users_account_lower")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_username_lower"), ["username_lower"], unique=False)

    op.create_table(
        "agent_chats",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_chats_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_chats")),
    )
    with op.batch_alter_table("agent_chats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_chats_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("auth_time", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_emails",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("verified_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_emails_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_user_emails")),
    )
    with op.batch_alter_table("user_emails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_emails_user_id"), ["user_id"], unique=False)

    op.create_table(
        "verification_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_verification_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_codes")),
    )
    with op.batch_alter_table("verification_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verification_codes_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index("ix_verification_codes_purpose_email", ["purpose", "email"], unique=False)
        batch_op.create_index(batch_op.f("ix_verification_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sproutgate.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_refresh_tokens_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_session_id"), ["session_id"], unique=False)
    _create_search_index()


def _create_search_index() -> None:
    """Substring and similarity search on display names.

    SQLite: an FTS5 trigram index kept in step by triggers (the ``username_lower`` b-tree serves
    one- and two-character prefixes). PostgreSQL: ``pg_trgm`` GIN index.
    """
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE users_fts USING fts5("
            "username_lower, content='users', content_rowid='rowid', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER users_fts_ai AFTER INSERT ON users BEGIN "
            "INSERT INTO users_fts(rowid, username_lower) VALUES (new.rowid, new.username_lower); END"
        )
        op.execute(
            "CREATE TRIGGER users_fts_ad AFTER DELETE ON users BEGIN "
            "INSERT INTO users_fts(users_fts, rowid, username_lower) "
            "VALUES ('delete', old.rowid, old.username_lower); END"
        )
        op.execute(
            "CREATE TRIGGER users_fts_au AFTER UPDATE OF username_lower ON users BEGIN "
            "INSERT INTO users_fts(users_fts, rowid, username_lower) "
            "VALUES ('delete', old.rowid, old.username_lower); "
            "INSERT INTO users_fts(rowid, username_lower) VALUES (new.rowid, new.username_lower); END"
        )
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_users_username_trgm ON users USING gin (username_lower gin_trgm_ops)")
        op.execute("CREATE INDEX ix_users_username_prefix ON users (username_lower text_pattern_ops)")
        op.execute("CREATE INDEX ix_users_email_trgm ON users USING gin (email gin_trgm_ops)")
        op.execute("CREATE INDEX ix_users_account_trgm ON users USING gin (account_lower gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trig in ("users_fts_ai", "users_fts_ad", "users_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trig}")
        op.execute("DROP TABLE IF EXISTS users_fts")
    elif bind.dialect.name == "postgresql":
        for ix in (
            "ix_users_username_trgm",
            "ix_users_username_prefix",
            "ix_users_email_trgm",
            "ix_users_account_trgm",
        ):
            op.execute(f"DROP INDEX IF EXISTS {ix}")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_session_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("verification_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_codes_user_id"))
        batch_op.drop_index("ix_verification_codes_purpose_email")
        batch_op.drop_index(batch_op.f("ix_verification_codes_expires_at"))

    op.drop_table("verification_codes")
    with op.batch_alter_table("user_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_emails_user_id"))

    op.drop_table("user_emails")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_expires_at"))

    op.drop_table("sessions")
    with op.batch_alter_table("agent_chats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_chats_user_id"))

    op.drop_table("agent_chats")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_username_lower"))

    op.drop_table("users")
    with op.batch_alter_table("pending_signups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_signups_expires_at"))
        batch_op.drop_index(batch_op.f("ix_pending_signups_account_lower"))

    op.drop_table("pending_signups")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_to_addr"))
        batch_op.drop_index("ix_mail_outbox_status_next")

    op.drop_table("mail_outbox")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
