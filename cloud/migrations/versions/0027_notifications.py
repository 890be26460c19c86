"""Notifications of QA cases: the durable queue, every delivery attempt, and the acknowledge links' key.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

* ``notifications``: a message about a case queued for one recipient over one channel, once per
  (case, severity, level, round, channel, recipient) (a unique key: planning twice queues once); its
  ``id`` is the hash of that key and the e-mail's Message-ID.
* ``notification_attempts``: each try at delivering one, with the error text; one accepted attempt and
  the notification is never sent again.
* ``notify_link_keys``: the HMAC key of acknowledge links when the config names no key file, made once.

All three are records, append-only on both dialects (``make_append_only``); the reporting role may not
read the link key (with it, anyone could make acknowledge links).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("notifications", "notification_attempts", "notify_link_keys")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", ID, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "case_id", "severity", "level", "round", "channel", "recipient", name="uq_notifications_notice"
        ),
    )
    op.create_index("ix_notifications_queued", "notifications", ["queued_at"])
    op.create_table(
        "notification_attempts",
        sa.Column("notification_id", ID, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("took_ms", sa.Integer, nullable=False),
    )
    op.create_table(
        "notify_link_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("secret_hex", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    make_append_only(TABLES)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    REVOKE ALL ON notify_link_keys FROM coldgate_readonly;
                END IF;
            END $$
            """
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
