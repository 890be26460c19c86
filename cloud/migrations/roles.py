"""PostgreSQL group roles for the migrations that make them (0009: the service and reporting, 0033:
ingest workers): one way to make a role and to name the schema and database they are granted on.

Roles belong to the cluster, not the database: a role is made only when missing (several databases of
one cluster migrate independently, also at the same time), and a schema owner without CREATEROLE is
told to have an administrator make it first.

Migrations that have run import this module, so what it does is part of their history: change it only
by adding (a new function, a new parameter with the old behaviour as its default), never by editing
what an existing migration calls.
"""

from __future__ import annotations

from alembic import op

__all__ = ["create_role", "names"]


def create_role(name: str) -> str:
    """The statement that makes the NOLOGIN role ``name`` unless the cluster has it."""
    return f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                BEGIN
                    CREATE ROLE {name} NOLOGIN;
                EXCEPTION
                    -- Another database of the cluster made it meanwhile: that is the role we want.
                    WHEN duplicate_object OR unique_violation THEN NULL;
                    WHEN insufficient_privilege THEN
                        RAISE EXCEPTION 'role {name} does not exist and % may not create it', current_user
                            USING HINT = 'as a superuser: CREATE ROLE {name} NOLOGIN '
                                '(deploy/README.md, "PostgreSQL roles")';
                END;
            END IF;
        END $$
    """


def names() -> tuple[str, str, str]:
    """The quoted schema and database of this migration, and the schema as an SQL string literal."""
    bind = op.get_bind()
    schema, database = bind.exec_driver_sql("SELECT current_schema(), current_database()").one()
    quote = bind.dialect.identifier_preparer.quote_identifier
    return quote(schema), quote(database), "'" + schema.replace("'", "''") + "'"
