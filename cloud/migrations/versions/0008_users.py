"""People and their roles: users are never deleted, and a login is never reused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

``users`` holds one row per person; ``user_roles`` one row per role a person
holds (the permissions of a role live in code, ``cloud/identity/roles.py``).
Triggers on both dialects refuse DELETE (and TRUNCATE on PostgreSQL) on
``users``, and any UPDATE that changes a user's ``id``, ``login`` or
``created_at``: a person is disabled, never removed, and their login stays
theirs, so every audit entry and signature keeps pointing at the same person.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.String(64)
FIXED = ("id", "login", "created_at")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("login", ID, nullable=False, unique=True),
        sa.Column("printed_name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("phone", ID),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("locked", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FIXED)
        op.execute(
            f"""
            CREATE FUNCTION coldgate_users_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    IF NOT ({changed}) THEN RETURN NEW; END IF;
                    RAISE EXCEPTION 'users: id, login and created_at never change: UPDATE refused'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RAISE EXCEPTION 'users are never deleted, only disabled: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER users_guard BEFORE UPDATE OR DELETE ON users "
            "FOR EACH ROW EXECUTE FUNCTION coldgate_users_guard()"
        )
        op.execute(
            "CREATE TRIGGER users_no_truncate BEFORE TRUNCATE ON users "
            "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_users_guard()"
        )
    else:
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FIXED)
        op.execute(
            "CREATE TRIGGER users_no_delete BEFORE DELETE ON users "
            "BEGIN SELECT RAISE(ABORT, 'users are never deleted, only disabled: DELETE refused'); END"
        )
        op.execute(
            f"CREATE TRIGGER users_fixed BEFORE UPDATE ON users WHEN {changed} "
            "BEGIN SELECT RAISE(ABORT, 'users: id, login and created_at never change: UPDATE refused'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS users_guard ON users")
        op.execute("DROP TRIGGER IF EXISTS users_no_truncate ON users")
        op.execute("DROP FUNCTION IF EXISTS coldgate_users_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_no_delete")
        op.execute("DROP TRIGGER IF EXISTS users_fixed")
    op.drop_table("user_roles")
    op.drop_table("users")
