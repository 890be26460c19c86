"""The group roles of deploy/README.md "PostgreSQL roles", made the way an administrator makes them once
per cluster (where the schema owner may not create roles): for the tests that log in as each role."""

from __future__ import annotations

from typing import Any

import psycopg

APP, READONLY, INGEST = "coldgate_app", "coldgate_readonly", "coldgate_ingest"


def make_group_roles(conn: psycopg.Connection[Any]) -> None:
    """Each group role, unless the cluster has it (roles are the cluster's: other tests' too)."""
    for role in (APP, READONLY, INGEST):
        conn.execute(
            f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$
            """
        )
