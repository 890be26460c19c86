"""Run one benchmark on each dialect asked for: a throw-away PostgreSQL database (dropped after) or a
SQLite file in a temporary folder, one after the other, so their figures come from the same run."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.rig.postgres import ThrowawayDatabase

__all__ = ["on_each_dialect"]

T = TypeVar("T")


def on_each_dialect(dialects: str, name: str, run: Callable[[str, str], T]) -> dict[str, T]:
    """``run(dialect, url)`` for each of the comma-separated ``dialects``; ``name`` names the SQLite file."""
    results: dict[str, T] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in dialects.split(","):
            if dialect == "postgresql":
                database = ThrowawayDatabase.on_server()
                try:
                    results[dialect] = run(dialect, str(database.url))
                finally:
                    database.drop()
            elif dialect == "sqlite":
                results[dialect] = run(dialect, f"sqlite:///{Path(tmp) / f'{name}.sqlite3'}")
            else:
                raise SystemExit(f"unknown dialect {dialect!r}")
    return results
