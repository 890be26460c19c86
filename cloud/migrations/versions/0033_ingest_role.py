"""PostgreSQL: a role for ingest workers of their own, with only what storing a gateway's data needs.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07

``coldgate cloud ingest --worker N`` runs ingest alone, in a process of its own that only ever turns
MQTT messages into rows.  As a member of ``coldgate_app`` it could also sign a QA decision, make a user
or rewrite master data; as a member of ``coldgate_ingest`` it can only store what gateways send:

- INSERT into what a message becomes (readings, their keys, the edge's items, gaps, alerts, hourly
  summaries, dead letters, the binding queue) and the registry of gateways, sites and sensors that a
  status or batch keeps current; the alerts ingest raises for a person (a capped dead-letter source, a
  gateway ahead of its window) go through ``edge_items``/``alerts`` and the audit trail;
- UPDATE only of ingest's own live state (coverage, batch ranges, boot anchors, dead-letter budgets,
  unknown gateways, the registry, the hourly summaries it folds readings into), DELETE only of merged
  batch ranges and folded summaries, and the same sanctioned fill-ins of recorded rows as the service
  (a reading's ``ts_corrected``, a dead letter's repeats);
- SELECT of everything but secrets (password hashes, token and session hashes, acknowledge-link keys);
- nothing of people, signatures, cases, documents, master data, recalls or reports but reading them.

Made only when missing, like 0009's roles; tables made later start with SELECT only (a later migration
that gives ingest a new table grants its INSERT itself).  Which tables the worker needs is proven by
``tests/test_pg_roles.py``, which runs every kind of message through ingest logged in as this role.
"""

from __future__ import annotations

from alembic import op

from coldgate.cloud.migrations.roles import create_role, names

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

INGEST = "coldgate_ingest"
#: What ingest inserts rows into.
INSERTS = (
    "readings", "item_keys", "edge_items", "gaps", "alerts", "reading_hours", "dead_letters",
    "binding_queue", "stream_coverage", "batch_ranges", "boot_anchors", "dead_letter_budgets",
    "unknown_gateways", "gateways", "sites", "sensors",
)  # fmt: skip
#: Ingest's own live state: updated as the stream moves...
UPDATES = (
    "stream_coverage", "batch_ranges", "boot_anchors", "dead_letter_budgets", "unknown_gateways", "gateways",
    "sites", "sensors", "reading_hours",
)  # fmt: skip
#: ...and the only rows it deletes: merged batch ranges, an hour's summary folded into its new row.
DELETES = ("batch_ranges", "reading_hours")
#: The sanctioned fill-ins of recorded rows (0007's triggers allow exactly these).
UPDATABLE_COLUMNS = {"readings": ("ts_corrected",), "dead_letters": ("repeats", "last_received_at", "batch")}
#: Hashes of secrets: nobody but the service reads them.
SECRETS = ("users", "api_tokens", "browser_sessions", "notify_link_keys")
PARTITION_FUNCTION = "coldgate_ensure_readings_partition"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no roles
    op.execute(create_role(INGEST))
    schema, database, _ = names()
    for statement in (
        f"GRANT TEMPORARY ON DATABASE {database} TO {INGEST}",  # COPY is staged in a temporary table
        f"GRANT USAGE ON SCHEMA {schema} TO {INGEST}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {INGEST}",
        f"REVOKE SELECT ON {', '.join(SECRETS)} FROM {INGEST}",
        f"GRANT INSERT ON {', '.join(INSERTS)} TO {INGEST}",
        f"GRANT UPDATE ON {', '.join(UPDATES)} TO {INGEST}",
        f"GRANT DELETE ON {', '.join(DELETES)} TO {INGEST}",
        *(f"GRANT UPDATE ({', '.join(cols)}) ON {t} TO {INGEST}" for t, cols in UPDATABLE_COLUMNS.items()),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {INGEST}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {INGEST}",
        f"GRANT EXECUTE ON FUNCTION {PARTITION_FUNCTION}(date) TO {INGEST}",
    ):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema, database, _ = names()
    for statement in (
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {INGEST}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {INGEST}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {INGEST}",
        f"REVOKE ALL ON FUNCTION {PARTITION_FUNCTION}(date) FROM {INGEST}",
        f"REVOKE USAGE ON SCHEMA {schema} FROM {INGEST}",
        f"REVOKE TEMPORARY ON DATABASE {database} FROM {INGEST}",
    ):
        op.execute(statement)
    # The role stays: it is the cluster's, and other databases may grant to it.
