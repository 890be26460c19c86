"""PostgreSQL roles: the service's role lacks the grants to change what is recorded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The triggers of 0007/0008 refuse changes to recorded data whoever asks; the
grants here are the second wall, and the one that also stops TRUNCATE of a
single ``readings`` partition (statement triggers are not cloned to
partitions).  Two group roles (NOLOGIN; login roles join them, see
deploy/README.md "PostgreSQL roles"):

- ``coldgate_app``, what the cloud service (ingest, API, scheduler, CLI)
  runs as: SELECT and INSERT on every table; UPDATE and DELETE only on live
  state; on ``readings`` UPDATE of ``ts_corrected`` alone and on
  ``dead_letters`` of the three columns 0007's trigger lets move; ``users``
  may be updated, never deleted; no TRUNCATE, no DDL anywhere.
- ``coldgate_readonly``, for reporting: SELECT only, and not the password
  hashes.

Ingest has no role of its own: it runs in the service's process on the
service's connection, and between them it writes nearly every table anyway.

Roles belong to the cluster, not the database: they are made only when
missing (several databases of one cluster migrate independently, also at
the same time), and the downgrade only revokes, never drops them, since
another database may still grant to them.  Making a role needs CREATEROLE;
where the schema owner lacks it, an administrator makes the two roles first.

Monthly partitions of ``readings`` made later must belong to the schema
owner (an owner may change anything, triggers aside), yet the service's
scheduler makes them: ``coldgate_ensure_readings_partition(date)`` is a
SECURITY DEFINER function owned by whoever ran this migration, which the
service may execute and ``ensure_partitions`` calls when it exists.  What
goes through ``readings`` is checked against the parent's grants only;
default privileges give new tables (partitions included) SELECT/INSERT for
the app and SELECT for reporting, and nothing more.
"""

from __future__ import annotations

from alembic import op

from coldgate.cloud.migrations.roles import create_role, names

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APP = "coldgate_app"
READONLY = "coldgate_readonly"
ROLES = (APP, READONLY)

#: Live state the service updates and removes rows of.
LIVE = (
    "sites", "zones", "gateways", "gateway_enrolments", "unknown_gateways", "sensors", "stream_coverage",
    "batch_ranges", "boot_anchors", "dead_letter_budgets", "user_roles",
)  # fmt: skip
#: Recorded data: no UPDATE or DELETE beyond the column grants below (the 0007 triggers agree).
PROTECTED = (
    "audit_log", "readings", "gaps", "alerts", "edge_items", "item_keys", "dead_letters",
    "dead_letter_replays",
)  # fmt: skip
#: The only columns of protected tables the service may UPDATE (the sanctioned fill-ins of 0007).
UPDATABLE_COLUMNS = {"readings": ("ts_corrected",), "dead_letters": ("repeats", "last_received_at", "batch")}
#: ``users``: updated (disabled, locked, new password), never deleted; reporting never sees password_hash.
USERS_READABLE = (
    "id", "login", "printed_name", "email", "phone", "active", "locked", "failed_logins", "created_at",
    "disabled_at", "password_changed_at",
)  # fmt: skip
PARTITION_FUNCTION = "coldgate_ensure_readings_partition"


def _partition_function(schema: str) -> str:
    # Bounds and name are computed here from the month, as cloud/db/partitions.py does, so the caller
    # chooses nothing but a month.  search_path is pinned: a SECURITY DEFINER function must not resolve
    # names through a schema its caller controls.
    return f"""
        CREATE FUNCTION {PARTITION_FUNCTION}(month date) RETURNS text
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            first_day date := date_trunc('month', month)::date;
            part_name text := 'readings_' || to_char(first_day, 'YYYY_MM');
            low bigint := extract(epoch FROM first_day::timestamp AT TIME ZONE 'UTC') * 1000;
            high bigint := extract(epoch FROM (first_day + interval '1 month') AT TIME ZONE 'UTC') * 1000;
        BEGIN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I.readings_default PARTITION OF %I.readings DEFAULT',
                {schema}, {schema});
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.readings FOR VALUES FROM (%s) TO (%s)',
                {schema}, part_name, {schema}, low, high);
            RETURN part_name;
        END $$
    """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no roles: its triggers (0007, 0008) are the only wall
    for role in ROLES:
        op.execute(create_role(role))
    schema, database, schema_literal = names()
    both = ", ".join(ROLES)
    statements = [
        # No CONNECT: the groups span every database of the cluster, so which logins may connect to
        # this one is the administrator's choice (PUBLIC by default).  TEMPORARY: ingest stages COPY.
        f"GRANT TEMPORARY ON DATABASE {database} TO {APP}",
        f"GRANT USAGE ON SCHEMA {schema} TO {both}",
        f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {APP}",
        f"REVOKE INSERT ON alembic_version FROM {APP}",
        f"GRANT UPDATE, DELETE ON {', '.join(LIVE)} TO {APP}",
        f"GRANT UPDATE ON users TO {APP}",
        *(f"GRANT UPDATE ({', '.join(cols)}) ON {t} TO {APP}" for t, cols in UPDATABLE_COLUMNS.items()),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {APP}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {READONLY}",
        f"REVOKE SELECT ON users FROM {READONLY}",
        f"GRANT SELECT ({', '.join(USERS_READABLE)}) ON users TO {READONLY}",
        # Tables this owner makes later (partitions, later migrations' tables) start with the plain grants.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT ON TABLES TO {APP}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {READONLY}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {APP}",
        _partition_function(schema_literal),
        f"REVOKE ALL ON FUNCTION {PARTITION_FUNCTION}(date) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {PARTITION_FUNCTION}(date) TO {APP}",
    ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema, database, _ = names()
    both = ", ".join(ROLES)
    for statement in (
        f"DROP FUNCTION IF EXISTS {PARTITION_FUNCTION}(date)",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {both}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {both}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {both}",  # column grants go with it
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {both}",
        f"REVOKE USAGE ON SCHEMA {schema} FROM {both}",
        f"REVOKE TEMPORARY ON DATABASE {database} FROM {APP}",
    ):
        op.execute(statement)
    # The roles stay: they are the cluster's, and other databases may grant to them.
