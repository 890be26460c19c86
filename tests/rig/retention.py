"""Products given their retention category the way QA gives it (a new version through the catalog's
writer), for the tests of the purge and of the reports over purged months."""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.catalog.products import product, put_product
from tests.rig.documents import QA

#: What a product keeps of its fields when only its category changes.
KEPT = ("name", "gtin", "hibc_lic", "hibc_pcn", "hibc_uom", "ma_id", "temperature_class", "serialised")


def categorise(engine: Engine, category: str, expiry: str | None = None, *, product_id: str = "VX10") -> None:
    """``product_id`` given ``category`` (and VX10's lot L1 a new ``expiry``) by new versions, as QA would."""
    now = datetime.datetime(2027, 2, 1, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        fields = {k: v for k, v in product(conn, product_id).items() if k in KEPT}
        put_product(conn, product_id, {**fields, "retention": category}, reason="MDR class", by=QA, now=now)
        if expiry is not None:
            put_lot(conn, "VX10", "L1", {"expiry": expiry}, reason="label corrected", by=QA, now=now)
