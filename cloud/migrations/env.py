"""Alembic environment: runs on the connection ``cloud.db.migrate`` hands over.

Only online mode: the cloud always migrates a live database it can reach.
"""

from __future__ import annotations

from alembic import context

from coldgate.cloud.db.models import Base, autogenerate_include

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through cloud.db.migrate.migrate(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER by copying the table
    compare_type=True,
    include_object=autogenerate_include,
)
with context.begin_transaction():
    context.run_migrations()
