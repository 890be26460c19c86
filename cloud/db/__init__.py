"""The cloud's SQL database: models, migrations and idempotent writes.

SQLite serves a single site; PostgreSQL is production.  Both run the same
models and migrations, so every test runs against both.
"""

from __future__ import annotations

from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.db.writes import insert_items

__all__ = ["insert_items", "migrate"]
