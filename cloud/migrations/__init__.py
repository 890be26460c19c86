"""Alembic migrations of the cloud database (run through ``cloud.db.migrate``)."""
