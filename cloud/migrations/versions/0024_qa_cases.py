"""QA cases: opened from alerts, with the alerts folded into each and every move of its state.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

A case is a record of people's decisions about an alert (21 CFR Part 11: who, when, why), so all three
tables are append-only, refused UPDATE and DELETE by triggers on both dialects, and on PostgreSQL the
service's role may only read and add to them:

* ``qa_cases``: the case as opened (its cause, the first alert's rule, subject and message);
* ``qa_case_alerts``: each raised alert and the case it was folded into (an alert joins one case: its
  key is the alert's);
* ``qa_case_steps``: the case's states, numbered; the highest is the state it is in.  A move adds a step
  with who made it, when, why and (on closing) the disposition.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("qa_cases", "qa_case_alerts", "qa_case_steps")


def upgrade() -> None:
    op.create_table(
        "qa_cases",
        sa.Column("id", ID, primary_key=True),
        sa.Column("site", ID),
        sa.Column("gateway", ID, nullable=False),
        sa.Column("rule", ID, nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject", ID, nullable=False),
        sa.Column("cause", sa.String(300), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qa_cases_cause", "qa_cases", ["cause"])
    op.create_table(
        "qa_case_alerts",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("alert_id", ID, primary_key=True),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("raised_ts", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qa_case_alerts_case", "qa_case_alerts", ["case_id"])
    op.create_table(
        "qa_case_steps",
        sa.Column("case_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_name", sa.Text, nullable=False),
        sa.Column("by_id", ID),
        sa.Column("reason", sa.Text),
        sa.Column("disposition", sa.String(32)),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_refuse_change()"
            )
            op.execute(
                f"""
                DO $$ BEGIN
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                        GRANT SELECT, INSERT ON {table} TO coldgate_app;
                    END IF;
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                        GRANT SELECT ON {table} TO coldgate_readonly;
                    END IF;
                END $$
                """
            )
    else:
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {event} refused'); END"
                )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
