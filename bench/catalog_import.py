"""CSV import of the catalog: 100,000-row files of products, lots and serials, on each dialect.

Per dialect (PostgreSQL, SQLite), in one run, for each kind in turn (products, then their lots, then
their serials: half single serials, half ranges of 1,000):

- **check**: read, parse and check the file against what is stored, writing nothing (the reference:
  what the rows cost before any insert);
- **import**: the whole import in one transaction (check again, multi-row inserts, the audit entry,
  commit): rows per second.

Goal (issue 14): >= 20,000 rows/s for each kind.

``python -m bench.catalog_import [--rows N] [--dialects postgresql,sqlite]``
"""

from __future__ import annotations

import argparse
import datetime
import time

from sqlalchemy import Engine

from bench.dialects import on_each_dialect
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.csv_import import KINDS, check_file, import_csv
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine

NOW = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
QA = Actor("Marta QA", "u-marta")
GOAL = 20_000


def gtin(n: int) -> str:
    """A GTIN-14 with its check digit, numbered ``n``."""
    body = f"5{n:012d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def files(rows: int) -> dict[str, bytes]:
    """A products, a lots and a serials file of ``rows`` rows each (one lot per product)."""
    products = ["id,name,gtin,temperature_class,tor_budget_s,serialised"]
    products += [f"P{i:07d},Product {i} 10 ml,{gtin(i)},2-8C,3600,yes" for i in range(rows)]
    lots = ["product,lot,expiry,manufactured,status"]
    lots += [f"P{i:07d},L{i:07d},2028-{i % 12 + 1:02d}-28,2026-01-15," for i in range(rows)]
    serials = ["product,lot,first,last"]
    serials += [
        f"P{i:07d},L{i:07d},{i * 1000:010d},{i * 1000 + 999:010d}" if i % 2 else f"P{i:07d},L{i:07d},S{i},"
        for i in range(rows)
    ]
    return {kind: ("\n".join(lines) + "\n").encode() for kind, lines in
            (("products", products), ("lots", lots), ("serials", serials))}  # fmt: skip


def run(url: str, data: dict[str, bytes]) -> dict[str, float]:
    migrate(url)
    engine: Engine = make_engine(url, writer=True, pool_size=1)
    try:
        with engine.begin() as conn:
            put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="bench", by=QA, now=NOW)
        figures: dict[str, float] = {}
        for kind in KINDS:
            with engine.connect() as conn:
                started = time.perf_counter()
                rows, _ = check_file(conn, kind, data[kind])
                checked = time.perf_counter() - started
                conn.rollback()
            started = time.perf_counter()
            with engine.begin() as conn:
                result = import_csv(conn, kind, data[kind], reason="bench", by=QA, now=NOW)
            took = time.perf_counter() - started
            assert result.created == len(rows), result
            figures[f"{kind}_check_rows_s"] = len(rows) / checked
            figures[f"{kind}_import_rows_s"] = len(rows) / took
            n = len(rows)
            print(f"  {kind:9} {n:7} rows: check {checked:6.2f} s ({n / checked:8.0f} rows/s), "
                  f"import {took:6.2f} s ({n / took:8.0f} rows/s)", flush=True)  # fmt: skip
        return figures
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dialects", default="postgresql,sqlite")
    args = parser.parse_args()
    data = files(args.rows)

    def one(dialect: str, url: str) -> dict[str, float]:
        print(f"{dialect}:", flush=True)
        return run(url, data)

    results = on_each_dialect(args.dialects, "catalog_import", one)
    imports = [v for figures in results.values() for k, v in figures.items() if k.endswith("import_rows_s")]
    slowest = min(imports)
    keys = " ".join(f"{d}_{k}={v:.0f}" for d, figures in results.items() for k, v in figures.items())
    print(f"RESULT rows={args.rows} {keys} slowest_import_rows_s={slowest:.0f} goal={GOAL} "
          f"ok={slowest >= GOAL}")  # fmt: skip


if __name__ == "__main__":
    main()
