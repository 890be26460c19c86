"""Master data for tests, written through the catalog's own audited functions as the API writes them:
a small catalog for the serial and import tests, a richer one (versions, a recall, a quarantine, an
expired lot) for the catalog pages and the browser flow."""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.lots import move_lot, put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.temperature_classes import put_class

__all__ = ["GTIN", "MADE", "NOW", "QA", "URL", "VX", "make_catalog", "seed_catalog"]

QA = Actor("Marta QA", "u-marta")
NOW = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
VX = "VX10"
URL = f"/catalog/products/{VX}/lots"


def make_catalog(engine: Engine, lots: tuple[str, ...] = ("L1", "L2"), serialised: bool = True) -> None:
    """A class, the serialised product VX10 and its ``lots``, written as the API writes them."""
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=QA, now=NOW)
        fields = {"name": "Vaccine X", "gtin": "4006381333931", "temperature_class": "2-8C",
                  "serialised": serialised}  # fmt: skip
        put_product(conn, VX, fields, reason="new product", by=QA, now=NOW)
        gauze = {"name": "Gauze", "ma_id": "MA.156.M0.100002.GAUZE1", "temperature_class": "2-8C"}
        put_product(conn, "PLAIN", gauze, reason="new product", by=QA, now=NOW)
        for number in lots:
            put_lot(conn, VX, number, {"expiry": "2027-12-31"}, reason="received", by=QA, now=NOW)
        put_lot(conn, "PLAIN", "G1", {}, reason="received", by=QA, now=NOW)


GTIN = "04006381333931"
#: 2026-12-01 09:00 UTC: the first versions; later ones an hour apart.
MADE = datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.UTC)


def seed_catalog(engine: Engine) -> None:
    """Two classes (2-8C changed once), two products, three lots: VX10/L1 released then recalled by the
    recall coordinator, VX10/L2 quarantined, IN20/B7 released and expired."""
    qa, rc = Actor("Quinn Tester", "u-quinn"), Actor("Rita Recall", "u-rita")
    hour = datetime.timedelta(hours=1)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, description="Refrigerated", reason="SOP-12",
                  by=qa, now=MADE)  # fmt: skip
        revised = {"low": 2, "high": 8, "pre_alarm_margin": 1.0, "alarm_delay_s": 900}
        put_class(conn, "2-8C", revised, description="Refrigerated", reason="SOP-12 rev 2: door openings",
                  by=qa, now=MADE + hour)  # fmt: skip
        put_class(conn, "15-25C", {"low": 15, "high": 25}, description="Room", reason="SOP-13", by=qa,
                  now=MADE)  # fmt: skip
        put_product(conn, "VX10", {"name": "Vaccine X", "gtin": GTIN, "temperature_class": "2-8C",
                                   "serialised": True}, reason="new product", by=qa, now=MADE)  # fmt: skip
        insulin = {"name": "Insulin 20", "ma_id": "MA.156.M0.100003.IN20", "temperature_class": "2-8C"}
        put_product(conn, "IN20", insulin, reason="new product", by=qa, now=MADE)
        put_lot(conn, "VX10", "L1", {"expiry": "2027-06-30"}, reason="received", by=qa, now=MADE)
        move_lot(conn, "VX10", "L1", "recalled", reason="FSN 2026-07: potency", by=rc, now=MADE + 2 * hour)
        put_lot(conn, "VX10", "L2", {"expiry": "2027-09-30"}, status="quarantined", reason="received",
                by=qa, now=MADE)  # fmt: skip
        put_lot(conn, "IN20", "B7", {"expiry": "2026-01-31"}, reason="received", by=qa, now=MADE)
