"""Locations (versioned), placements of sensors, readers and scanners in them, calibration certificates.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

All three are records: triggers refuse UPDATE and DELETE on both dialects,
and on PostgreSQL the service's role may only read and add to them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.String(64)
MOMENT = sa.DateTime(timezone=True)
TABLES = ("locations", "placements", "calibrations")


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("site", ID, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("temperature_class", ID),
        sa.Column("inside", ID),
        sa.Column("outside", ID),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("changed_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("site", "id", "version"),
    )
    op.create_table(
        "placements",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("device_kind", sa.String(16), primary_key=True),
        sa.Column("device", ID, primary_key=True),
        sa.Column("valid_from", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("site", ID, nullable=False),
        sa.Column("location", ID),
        sa.Column("recorded_at", MOMENT, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "calibrations",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("sensor", ID, primary_key=True),
        sa.Column("certificate", ID, primary_key=True),
        sa.Column("calibrated_on", sa.Date, nullable=False),
        sa.Column("accuracy", sa.Text, nullable=False),
        sa.Column("next_due", sa.Date, nullable=False),
        sa.Column("recorded_at", MOMENT, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
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
