"""The dock's test world: master data, recall lists, observations and stamps for the door checks.

Shared by the door-check tests and the door-alert-group tests (and their
hypothesis strategies), so neither imports the other.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from hypothesis import strategies as st

from coldgate.contract.codec import validate
from coldgate.contract.downlink import (
    BatchInfo,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    RecallStatus,
    TemperatureClass,
)
from coldgate.contract.items import Alert
from coldgate.gateway.clock import Stamp
from coldgate.gateway.rules.dock_checks import DoorChecks, DoorPolicy, Observation
from coldgate.gateway.rules.dock_knowledge import Knowledge

T0_MS = 1_741_079_700_000
BOOT = "b0070001"
TODAY = datetime.date(2025, 3, 4)
INSULIN = "80614141123458"  # 2-8 °C
GAUZE = "09506000134352"  # 15-25 °C
STRANGER = "00012345600012"  # not in the master data
AMBIENT = (15.0, 25.0)
COLD = (2.0, 8.0)


def at(t_s: float, boot: str = BOOT, synced: bool = True) -> Stamp:
    return Stamp(wall_ms=T0_MS + round(t_s * 1000), mono_ms=round(t_s * 1000), boot=boot, synced=synced)


def master(**overrides: Any) -> MasterData:
    base: dict[str, Any] = {
        "temperature_classes": [
            TemperatureClass(name="2-8C", low=2.0, high=8.0),
            TemperatureClass(name="15-25C", low=15.0, high=25.0),
        ],
        "products": [
            Product(gtin=INSULIN, name="Insulin pen", temperature_class="2-8C"),
            Product(gtin=GAUZE, name="Gauze", temperature_class="15-25C"),
        ],
        "batches": [
            BatchInfo(gtin=INSULIN, lot="LOT42", expiry=datetime.date(2026, 7, 31)),
            BatchInfo(gtin=INSULIN, lot="OLD1", expiry=datetime.date(2025, 3, 1)),
            BatchInfo(gtin=INSULIN, lot="SOON", expiry=datetime.date(2025, 3, 20)),
        ],
    }
    base.update(overrides)
    return MasterData(v=1, gateway="gw01", version=1, issued=T0_MS, **base)


def recalls(*entries: RecallEntry) -> RecallList:
    return RecallList(v=1, gateway="gw01", version=1, issued=T0_MS, entries=list(entries))


def recall(gtin: str = INSULIN, status: str = "recalled", **more: Any) -> RecallEntry:
    return RecallEntry(
        gtin=gtin, status=RecallStatus(status), reference=more.pop("reference", "FSN-1"), **more
    )


def obs(
    direction: str | None = "in",
    gtin: str | None = INSULIN,
    lot: str | None = "LOT42",
    serial: str | None = "1001",
    key: str = "epc1",
    door: str = "D1",
    zone: tuple[float, float] | None = COLD,
    expiry: datetime.date | None = None,
    today: datetime.date = TODAY,
    **more: Any,
) -> Observation:
    """``more``: the scan-only fields (``hibc``, ``hibc_uom``, ``ma``, ``expiry_hour``, ``best_before``)
    and the site's local ``hour``."""
    return Observation(
        door=door,
        zone_class=zone,
        direction=direction,
        key=key,
        gtin=gtin,
        lot=lot,
        serial=serial,
        expiry=expiry,
        today=today,
        **more,
    )


# -- products known by HIBC or MA (contract 2026-12-06) ----------------------------------------------

CATHETER = "CATH-12"  # no GTIN: HIBC A123CATH12, any unit of measure; 15-25 °C
CATHETER_HIBC = "A123CATH12"
STENT_BOX, STENT_UNIT = "STENT-B", "STENT-U"  # HIBC A123STNT: unit of measure 1 and 0 are two products
STENT_HIBC = "A123STNT"
PUMP = "PUMP-7"  # no GTIN: MA id below; 2-8 °C with its own 600 s TOR budget
PUMP_MA = "MA.156.M0.100001.0001A"
INSULIN_HIBC = "B456INS1"  # the insulin pen's HIBC label: resolves to its GTIN
PUMP_TOR_S = 600


def any_scheme_master(**overrides: Any) -> MasterData:
    """``master()`` plus products named by HIBC and MA, some without a GTIN, with lots keyed by id."""
    base: dict[str, Any] = {
        "products": [
            Product(gtin=INSULIN, name="Insulin pen", temperature_class="2-8C", hibc=INSULIN_HIBC),
            Product(gtin=GAUZE, name="Gauze", temperature_class="15-25C"),
            Product(id=CATHETER, name="Catheter", temperature_class="15-25C", hibc=CATHETER_HIBC),
            Product(id=STENT_BOX, name="Stent box", temperature_class="15-25C", hibc=STENT_HIBC, hibc_uom=1),
            Product(id=STENT_UNIT, name="Stent", temperature_class="15-25C", hibc=STENT_HIBC, hibc_uom=0),
            Product(id=PUMP, name="Pump", temperature_class="2-8C", ma=PUMP_MA, tor_budget_s=PUMP_TOR_S),
        ],
        "batches": [
            *master().batches,
            BatchInfo(product=CATHETER, lot="L1", expiry=TODAY, expiry_hour=14),
            BatchInfo(product=CATHETER, lot="L2", expiry=datetime.date(2026, 6, 30)),
            BatchInfo(product=PUMP, lot="P0", expiry=datetime.date(2025, 3, 1)),
        ],
    }
    base.update(overrides)
    return master(**base)


def any_scheme_recalls() -> RecallList:
    return recalls(
        recall(lot="LOT17", reference="FSN-2025-014"),
        RecallEntry(product=CATHETER, lot="LOT17", status=RecallStatus.RECALLED, reference="FSN-2026-011"),
        RecallEntry(product=STENT_BOX, status=RecallStatus.QUARANTINED, reference="QA-STENT-4"),
        RecallEntry(product=PUMP, status=RecallStatus.QUARANTINED, reference="QA-PUMP-2", reason="seal"),
    )


def checks(
    recall_list: RecallList | None = None, master_data: MasterData | None = None, **policy: Any
) -> DoorChecks:
    return DoorChecks(
        DoorPolicy(**policy), Knowledge.from_documents(master_data or master(), recall_list or recalls())
    )


def steps(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    return [(a.action.value, a.rule, a.severity.value) for a in alerts]


def check_valid(alert: Alert) -> None:
    assert validate(msgspec.structs.replace(alert, seq=1)).alert_id == alert.alert_id


# -- hypothesis: random traffic at two doors ---------------------------------------------------------

KEYS = ["k0", "k1", "k2"]
OBS = st.builds(
    obs,
    direction=st.sampled_from(["in", "out", "unknown", None]),
    gtin=st.sampled_from([INSULIN, GAUZE, STRANGER, None]),
    lot=st.sampled_from(["LOT42", "OLD1", "SOON", "LOT17", None]),
    serial=st.sampled_from(["1001", "77", None]),
    key=st.sampled_from(KEYS),
    door=st.sampled_from(["D1", "D2"]),
    zone=st.sampled_from([AMBIENT, COLD, None]),
    expiry=st.sampled_from([None, TODAY, TODAY - datetime.timedelta(days=3)]),
)
RECALLS = recalls(
    recall(lot="LOT17"), recall(serial="77", status="quarantined"), recall(gtin=GAUZE, lot="SOON")
)
EVENTS = st.lists(
    st.tuples(st.integers(0, 400), st.one_of(OBS, st.just("tick"), st.just("update"))), max_size=40
)
