"""Alembic migrations of the cloud store (run through ``cloud.db.migrate``)."""
