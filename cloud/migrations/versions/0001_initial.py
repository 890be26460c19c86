"""Initial schema: sites, zones, gateways, sensors, item tables, dead letters.

Written out rather than generated from the models, so that later model
changes cannot silently rewrite history.  On PostgreSQL ``readings`` is range
partitioned by ``ts`` with monthly partitions around the migration date plus a
DEFAULT partition.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from coldgate.cloud.db.partitions import ensure_partitions

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)
JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def _item_columns(ts_in_key: bool = False) -> list[sa.Column]:
    return [
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, primary_key=ts_in_key, nullable=False, autoincrement=False),
        sa.Column("boot", ID, nullable=False),
        sa.Column("mono", sa.BigInteger, nullable=False),
        sa.Column("synced", sa.Boolean, nullable=False),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table("sites", sa.Column("id", ID, primary_key=True), sa.Column("name", sa.Text))
    op.create_table(
        "zones",
        sa.Column("site", ID, sa.ForeignKey("sites.id"), primary_key=True),
        sa.Column("id", ID, primary_key=True),
        sa.Column("temperature_class", ID, nullable=False),
    )
    op.create_table(
        "gateways",
        sa.Column("id", ID, primary_key=True),
        sa.Column("site", ID, sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("last_status", JSON_DOC),
    )
    op.create_table(
        "sensors",
        sa.Column("gateway", ID, sa.ForeignKey("gateways.id"), primary_key=True),
        sa.Column("id", ID, primary_key=True),
        sa.Column("zone", ID),
        sa.Column("calibration_due", sa.Date),
    )
    op.create_table(
        "reading_keys",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "readings",
        *_item_columns(ts_in_key=True),
        sa.Column("sensor", ID, nullable=False),
        sa.Column("quantity", sa.String(32), nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("ts_corrected", sa.BigInteger),
        postgresql_partition_by="RANGE (ts)",
    )
    if postgres:
        today = datetime.datetime.now(datetime.UTC).date()
        ensure_partitions(bind, today - datetime.timedelta(days=62), today + datetime.timedelta(days=93))
    op.create_index("ix_readings_sensor_ts", "readings", ["gateway", "sensor", "ts"])
    op.create_table(
        "gaps",
        *_item_columns(),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject", ID, nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "alerts",
        *_item_columns(),
        sa.Column("alert_id", ID, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("rule", ID, nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject", ID, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence", JSON_DOC, nullable=False),
    )
    op.create_index("ix_alerts_alert_id", "alerts", ["gateway", "alert_id"])
    op.create_table(
        "edge_items",
        *_item_columns(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", JSON_DOC, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "dead_letters",
        "edge_items",
        "alerts",
        "gaps",
        "readings",
        "reading_keys",
        "sensors",
        "gateways",
        "zones",
    ):
        op.drop_table(table)
    op.drop_table("sites")
