"""A temperature/humidity logger's tile, chart and limits are about its temperature (``queries.sensors``),
on both dialects: the humidity read in the same poll (the poll's one stamp, a later seq) is not what the
overview shows; a humidity-only sensor still shows its humidity; a newer reading of any quantity wins."""

from __future__ import annotations

from sqlalchemy import Engine

from coldgate.cloud.api import queries
from coldgate.contract.units import Quantity
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message
from tests.rig.items import T0, reading

GW = "gw01"


def test_a_logger_shows_its_newest_temperature_not_the_humidity_read_with_it(engine: Engine) -> None:
    items = [
        reading(4.0, sensor="cr-03", ts=T0, seq=1),
        reading(45.0, sensor="cr-03", ts=T0, seq=2, quantity=Quantity.HUMIDITY),
        reading(9.5, sensor="cr-03", ts=T0 + 1000, seq=3),  # the next poll: the newest temperature
        reading(46.0, sensor="cr-03", ts=T0 + 1000, seq=4, quantity=Quantity.HUMIDITY),
        reading(50.0, sensor="rh-only", ts=T0, seq=5, quantity=Quantity.HUMIDITY),
        reading(51.0, sensor="rh-only", ts=T0 + 1000, seq=6, quantity=Quantity.HUMIDITY),
        reading(5.0, sensor="rh-newer", ts=T0, seq=7),
        reading(40.0, sensor="rh-newer", ts=T0 + 1000, seq=8, quantity=Quantity.HUMIDITY),
    ]
    assert ingest(engine, *batch_message(GW, items)).kind == "batch"
    with engine.connect() as conn:
        found = {s.id: s.last_reading for s in queries.sensors(conn, GW, None, now_ms=T0 + 2000)}
    shown = {name: (r.quantity, r.value, r.ts) for name, r in found.items() if r is not None}
    assert shown == {
        "cr-03": ("temperature", 9.5, T0 + 1000),
        "rh-only": ("humidity", 51.0, T0 + 1000),
        "rh-newer": ("humidity", 40.0, T0 + 1000),
    }
