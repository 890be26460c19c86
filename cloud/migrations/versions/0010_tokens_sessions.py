"""API tokens per person or machine, and browser sessions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Both keep only a SHA-256 of their secret.  A token is revoked, never
deleted; a session is ended, never deleted: either row answers "who could
act, from when to when".  On PostgreSQL the service's group role (made by
0009) may read, add and update both, never delete; the reporting role may
read neither (hashes of secrets are nobody's report).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("api_tokens", "browser_sessions")


def upgrade() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "api_tokens",
        sa.Column("id", ID, primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("users.id")),
        sa.Column("machine", ID),
        sa.Column("roles", sa.Text),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("expires_at", moment, nullable=False),
        sa.Column("revoked_at", moment),
        sa.Column("revoked_by", sa.Text),
    )
    op.create_table(
        "browser_sessions",
        sa.Column("cookie_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("last_seen_at", moment, nullable=False),
        sa.Column("expires_at", moment, nullable=False),
        sa.Column("client", sa.Text),
        sa.Column("ended_at", moment),
        sa.Column("ended_reason", sa.Text),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(
                f"""
                DO $$ BEGIN
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                        GRANT SELECT, INSERT, UPDATE ON {table} TO coldgate_app;
                    END IF;
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                        REVOKE ALL ON {table} FROM coldgate_readonly;
                    END IF;
                END $$
                """
            )


def downgrade() -> None:
    op.drop_table("browser_sessions")
    op.drop_table("api_tokens")
