"""OpenID Connect grants: authorization codes, consents, the apps each browser sign-in was
used with, and on sessions how the person signed in (amr) and, for an app's grant, its client,
scopes, browser sign-in and the session it ends with

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sproutgate.storage.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _client_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["client_id"],
        ["oauth_clients.client_id"],
        name=op.f(f"fk_{table}_client_id_oauth_clients"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("amr", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("sso_session_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_sessions_client_id_oauth_clients"),
            "oauth_clients",
            ["client_id"],
            ["client_id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_sessions_client_id"), ["client_id"], unique=False)
        batch.create_index(op.f("ix_sessions_parent_id"), ["parent_id"], unique=False)
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("code_challenge", sa.String(length=64), nullable=True),
        sa.Column("auth_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("grant_session_id", sa.String(length=36), nullable=True),
        _client_fk("oauth_authorization_codes"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oauth_authorization_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_oauth_authorization_codes_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_authorization_codes_code_hash")),
    )
    for column in ("client_id", "user_id", "session_id", "expires_at"):
        op.create_index(
            op.f(f"ix_oauth_authorization_codes_{column}"),
            "oauth_authorization_codes",
            [column],
            unique=False,
        )
    op.create_table(
        "oauth_consents",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=256), nullable=False),
        sa.Column("granted_at", UTCDateTime(timezone=True), nullable=False),
        _client_fk("oauth_consents"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oauth_consents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "client_id", name=op.f("pk_oauth_consents")),
    )
    op.create_index(op.f("ix_oauth_consents_client_id"), "oauth_consents", ["client_id"], unique=False)
    op.create_table(
        "oidc_session_clients",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        _client_fk("oidc_session_clients"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_oidc_session_clients_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "client_id", name=op.f("pk_oidc_session_clients")),
    )
    op.create_index(
        op.f("ix_oidc_session_clients_client_id"), "oidc_session_clients", ["client_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_oidc_session_clients_client_id"), table_name="oidc_session_clients")
    op.drop_table("oidc_session_clients")
    op.drop_index(op.f("ix_oauth_consents_client_id"), table_name="oauth_consents")
    op.drop_table("oauth_consents")
    for column in ("client_id", "user_id", "session_id", "expires_at"):
        op.drop_index(op.f(f"ix_oauth_authorization_codes_{column}"), table_name="oauth_authorization_codes")
    op.drop_table("oauth_authorization_codes")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index(op.f("ix_sessions_parent_id"))
        batch.drop_index(op.f("ix_sessions_client_id"))
        batch.drop_constraint(op.f("fk_sessions_client_id_oauth_clients"), type_="foreignkey")
        for column in ("parent_id", "sso_session_id", "scope", "client_id", "amr"):
            batch.drop_column(column)
