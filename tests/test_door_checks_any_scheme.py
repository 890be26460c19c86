"""Issue 14: HIBC- and MA-labelled goods get the same door checks as GS1-labelled ones.

A scan names its product by GTIN, HIBC code (with unit of measure) or MA id;
master data lists products by any of them, some without a GTIN (keyed by
their catalog id in batches and recall entries).  These tests hold the door
checks to that: recalls and quarantine, expiry to the hour (in the site's
time zone), lot expiry from master data, best-before, unknown products and a
product's own TOR budget; then the same through the gateway's ``Dock`` from
the raw bytes a scanner sends, and hypothesis over HIBC- and MA-looking text.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.codec import validate
from coldgate.contract.items import Alert, Scan, Scheme
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.dock import Dock
from coldgate.gateway.readers.barcode import parse_scan
from coldgate.gateway.readers.barcode.hibc import check_character
from coldgate.gateway.rules.dock_checks import (
    BEST_BEFORE_PASSED,
    EXPIRED,
    NEAR_EXPIRY,
    QUARANTINED,
    RECALL_UNRESOLVED,
    RECALLED,
    TOR,
    UNKNOWN_GTIN,
    DoorChecks,
    DoorPolicy,
)
from coldgate.gateway.rules.dock_knowledge import Knowledge
from tests.rig.dock import (
    AMBIENT,
    CATHETER,
    CATHETER_HIBC,
    COLD,
    INSULIN,
    INSULIN_HIBC,
    PUMP,
    PUMP_MA,
    PUMP_TOR_S,
    STENT_BOX,
    STENT_HIBC,
    STENT_UNIT,
    TODAY,
    any_scheme_master,
    any_scheme_recalls,
    at,
    check_valid,
    obs,
    recalls,
    steps,
)

SCAN = {"direction": None, "gtin": None, "serial": None, "key": "scan1", "zone": AMBIENT}


def door(**policy: Any) -> DoorChecks:
    return DoorChecks(
        DoorPolicy(**policy), Knowledge.from_documents(any_scheme_master(), any_scheme_recalls())
    )


def rules(alerts: list[Alert]) -> set[str]:
    return {a.rule for a in alerts}


def hibc_scan(**more: Any) -> Any:
    return obs(**{**SCAN, "hibc": CATHETER_HIBC, "hibc_uom": 0, "lot": "L2", **more})


def ma_scan(**more: Any) -> Any:
    return obs(**{**SCAN, "ma": PUMP_MA, "lot": "P5", "zone": COLD, **more})


# -- the index ---------------------------------------------------------------------------------------


def test_the_index_keys_products_by_gtin_else_id_and_finds_them_by_hibc_and_ma() -> None:
    knowledge = Knowledge.from_documents(any_scheme_master(), any_scheme_recalls())
    assert {CATHETER, STENT_BOX, STENT_UNIT, PUMP, INSULIN} <= knowledge.products
    assert CATHETER not in knowledge.gtins
    assert knowledge.product_key(None, CATHETER_HIBC, 7) == CATHETER  # null uom: any unit of measure
    assert knowledge.product_key(None, CATHETER_HIBC, None) == CATHETER
    assert knowledge.product_key(None, STENT_HIBC, 1) == STENT_BOX
    assert knowledge.product_key(None, STENT_HIBC, 0) == STENT_UNIT
    assert knowledge.product_key(None, STENT_HIBC, 2) is None  # no product for that unit of measure
    assert knowledge.product_key(None, INSULIN_HIBC, 0) == INSULIN  # a product with a GTIN: its GTIN
    assert knowledge.product_key(None, None, None, PUMP_MA) == PUMP
    assert knowledge.product_key(None, None, None, "MA.156.M0.100001.9999Z") is None
    assert knowledge.expiries[(CATHETER, "L1")] == TODAY and knowledge.expiry_hours[(CATHETER, "L1")] == 14
    assert [e.reference for e in knowledge.recalls[CATHETER]] == ["FSN-2026-011"]
    assert knowledge.tor_budgets == {PUMP: PUMP_TOR_S}


def test_an_exact_unit_of_measure_wins_over_any() -> None:
    master_data = any_scheme_master()
    extra = msgspec.structs.replace(master_data.products[3], id="STENT-ANY", hibc_uom=None)
    knowledge = Knowledge.from_documents(
        msgspec.structs.replace(master_data, products=[*master_data.products, extra]), None
    )
    assert knowledge.product_key(None, STENT_HIBC, 1) == STENT_BOX
    assert knowledge.product_key(None, STENT_HIBC, 5) == "STENT-ANY"


# -- recall and quarantine ---------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "severity"), [(None, "warning"), ("out", "critical")])
def test_an_hibc_scan_of_a_recalled_lot_alerts(direction: str | None, severity: str) -> None:
    alerts = door().observe(hibc_scan(lot="LOT17", direction=direction), at(0))
    assert steps(alerts) == [("raised", RECALLED, severity)]
    (alert,) = alerts
    assert "HIBC A123CATH12/0 lot LOT17" in alert.message and "FSN-2026-011" in alert.message
    details = alert.evidence.details
    assert (details["hibc"], details["product"], details["reference"]) == (
        CATHETER_HIBC,
        CATHETER,
        "FSN-2026-011",
    )
    check_valid(alert)


def test_an_hibc_scan_of_another_lot_or_without_lot() -> None:
    assert door().observe(hibc_scan(lot="L2"), at(0)) == []
    unresolved = door().observe(hibc_scan(lot=None), at(0))
    assert steps(unresolved) == [("raised", RECALL_UNRESOLVED, "warning")]
    assert "lots LOT17 of this product are recalled" in unresolved[0].message


def test_an_hibc_label_of_a_gtin_product_meets_the_gtin_recall() -> None:
    alerts = door().observe(obs(**{**SCAN, "hibc": INSULIN_HIBC, "hibc_uom": 1, "lot": "LOT17"}), at(0))
    assert steps(alerts) == [("raised", RECALLED, "warning")]
    assert alerts[0].evidence.details["product"] == INSULIN  # the GTIN the label does not carry


def test_the_unit_of_measure_picks_the_product_and_its_quarantine() -> None:
    box = door().observe(obs(**{**SCAN, "hibc": STENT_HIBC, "hibc_uom": 1, "lot": "S1"}), at(0))
    assert steps(box) == [("raised", QUARANTINED, "warning")]
    assert door().observe(obs(**{**SCAN, "hibc": STENT_HIBC, "hibc_uom": 0, "lot": "S1"}), at(0)) == []


@pytest.mark.parametrize(("direction", "severity"), [(None, "warning"), ("out", "critical")])
def test_an_ma_scan_of_a_quarantined_product(direction: str | None, severity: str) -> None:
    alerts = door().observe(ma_scan(direction=direction), at(0))
    assert steps(alerts) == [("raised", QUARANTINED, severity)]
    assert f"MA {PUMP_MA} lot P5 (QA-PUMP-2: seal)" in alerts[0].message
    assert alerts[0].evidence.details["ma"] == PUMP_MA
    check_valid(alerts[0])


def test_recalls_without_master_data_still_apply_to_a_gtin_but_cannot_resolve_hibc() -> None:
    """A GTIN is its own key; an HIBC code means nothing until master data says whose it is."""
    checks = DoorChecks(DoorPolicy(), Knowledge.from_documents(None, any_scheme_recalls()))
    assert rules(checks.observe(obs(**{**SCAN, "gtin": INSULIN, "lot": "LOT17"}), at(0))) == {RECALLED}
    assert checks.observe(hibc_scan(lot="LOT17", key="scan2"), at(0)) == []


# -- unknown products --------------------------------------------------------------------------------


def test_unknown_hibc_and_ma_warn_like_an_unknown_gtin() -> None:
    unknown_hibc = door().observe(hibc_scan(hibc="Z999NOPE"), at(0))
    assert steps(unknown_hibc) == [("raised", UNKNOWN_GTIN, "warning")]
    assert "HIBC Z999NOPE/0 at door D1 is not in the master data" in unknown_hibc[0].message
    unknown_uom = door().observe(obs(**{**SCAN, "hibc": STENT_HIBC, "hibc_uom": 2}), at(0))
    assert rules(unknown_uom) == {UNKNOWN_GTIN}
    unknown_ma = door().observe(ma_scan(ma="MA.156.M0.100001.9999Z"), at(0))
    assert rules(unknown_ma) == {UNKNOWN_GTIN} and "MA MA.156.M0.100001.9999Z" in unknown_ma[0].message


def test_a_scan_naming_no_product_gets_no_product_checks() -> None:
    """An HIBC secondary-data symbol (lot and expiry, no primary) cannot be matched to a product."""
    alerts = door().observe(
        obs(**{**SCAN, "lot": "LOT17", "expiry": TODAY - datetime.timedelta(days=9)}), at(0)
    )
    assert alerts == []


# -- expiry, to the hour -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(12, {NEAR_EXPIRY}), (13, {NEAR_EXPIRY}), (14, {EXPIRED}), (23, {EXPIRED}), (None, {EXPIRED})],
)
def test_an_expiry_with_an_hour_is_expired_from_that_hour_on(hour: int | None, expected: set[str]) -> None:
    """Good until 14:00 of its date; the site's hour unknown (None) is judged as 23: the safe side."""
    alerts = door().observe(hibc_scan(expiry=TODAY, expiry_hour=14, hour=hour), at(0))
    assert rules(alerts) == expected
    if EXPIRED in expected:
        assert "expired 2025-03-04 14:00" in alerts[0].message
        assert alerts[0].evidence.details["expiry"] == "2025-03-04 14:00"


def test_an_expiry_hour_of_another_day_does_not_matter() -> None:
    yesterday = TODAY - datetime.timedelta(days=1)
    assert rules(door().observe(hibc_scan(expiry=yesterday, expiry_hour=23, hour=0), at(0))) == {EXPIRED}
    tomorrow = TODAY + datetime.timedelta(days=1)
    assert rules(door().observe(hibc_scan(expiry=tomorrow, expiry_hour=0, hour=23), at(0))) == {NEAR_EXPIRY}


@pytest.mark.parametrize(("hour", "expected"), [(13, {NEAR_EXPIRY}), (14, {EXPIRED})])
def test_the_lot_expiry_comes_from_master_data_when_the_scan_has_none(hour: int, expected: set[str]) -> None:
    """Lot L1 of the catheter (keyed by its id, not a GTIN) expires today at 14:00 by master data."""
    alerts = door().observe(hibc_scan(lot="L1", hour=hour), at(0))
    assert rules(alerts) == expected
    assert alerts[0].evidence.details["product"] == CATHETER


def test_master_data_expiry_of_an_ma_lot() -> None:
    alerts = door().observe(ma_scan(lot="P0", zone=None), at(0))
    assert rules(alerts) == {QUARANTINED, EXPIRED}


def test_the_earlier_of_label_and_master_data_counts_to_the_hour() -> None:
    """The label says tomorrow; master data says today 14:00: at 15:00 the unit is expired."""
    tomorrow = TODAY + datetime.timedelta(days=1)
    assert rules(door().observe(hibc_scan(lot="L1", expiry=tomorrow, hour=15), at(0))) == {EXPIRED}
    # the label's date without an hour lasts all day, so the master data's 14:00 of the same day is earlier
    assert rules(door().observe(hibc_scan(lot="L1", expiry=TODAY, hour=14), at(0))) == {EXPIRED}


# -- best before -------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [None, "in", "out"])
def test_a_passed_best_before_date_is_a_warning_even_outbound(direction: str | None) -> None:
    passed = TODAY - datetime.timedelta(days=1)
    alerts = door().observe(hibc_scan(best_before=passed, direction=direction), at(0))
    assert steps(alerts) == [("raised", BEST_BEFORE_PASSED, "warning")]
    assert alerts[0].evidence.details["best_before"] == "2025-03-03"
    check_valid(alerts[0])


def test_best_before_today_is_fine_and_an_expired_item_gets_only_the_expiry_alert() -> None:
    assert door().observe(hibc_scan(best_before=TODAY), at(0)) == []
    passed = TODAY - datetime.timedelta(days=3)
    alerts = door().observe(hibc_scan(best_before=passed, expiry=passed), at(0))
    assert rules(alerts) == {EXPIRED}


# -- time out of refrigeration -----------------------------------------------------------------------


def test_a_products_own_tor_budget_overrides_the_doors() -> None:
    checks = door(tor_budget_s=1800, hold_s=10_000)
    checks.observe(ma_scan(lot="P5", zone=AMBIENT, key="pump1"), at(0))  # quarantine raised; clock starts
    assert checks.tick(at(PUMP_TOR_S / 2 - 1)) == []
    warned = checks.tick(at(PUMP_TOR_S / 2))
    assert steps(warned) == [("raised", TOR, "warning")]
    assert warned[0].evidence.details["budget_s"] == str(PUMP_TOR_S)
    assert f"of a {PUMP_TOR_S} s budget" in warned[0].message
    assert steps(checks.tick(at(PUMP_TOR_S))) == [("updated", TOR, "critical")]


def test_a_product_without_its_own_budget_keeps_the_doors() -> None:
    checks = door(tor_budget_s=1800, hold_s=10_000)
    checks.observe(obs(**{**SCAN, "gtin": INSULIN, "lot": "LOT42", "key": "pen1"}), at(0))
    assert checks.tick(at(PUMP_TOR_S)) == []
    assert steps(checks.tick(at(900))) == [("raised", TOR, "warning")]


def test_sgtin_movements_keep_their_gtin_key() -> None:
    checks = DoorChecks(DoorPolicy(), Knowledge.from_documents(any_scheme_master(), recalls()))
    assert checks.observe(obs("in", lot=None, zone=COLD), at(0)) == []
    checks = door()
    assert steps(checks.observe(obs("out", lot=None, zone=COLD), at(0))) == [
        ("raised", RECALL_UNRESOLVED, "warning")
    ]


# -- through the gateway's Dock, from the scanner's bytes --------------------------------------------

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _dock_config() -> Any:
    return gateway_config_from_document(
        {
            "gateway": {
                "id": "dock-pi",
                "site": "site1",
                "data_dir": "/tmp/coldgate",
                "timezone": "Europe/Berlin",
            },
            "temperature_classes": [{"name": "15-25C", "low": 15.0, "high": 25.0}],
            "zones": [{"id": "dock2", "temperature_class": "15-25C"}],
            "scanners": [{"id": "dock2-s1", "port": "/dev/null", "door": "dock2", "zone": "dock2"}],
        },
        "dock.toml",
    )


class _Clock:
    def __init__(self, local: datetime.datetime) -> None:
        self.wall_ms = int(local.timestamp() * 1000)
        self.mono_ms = 5_000

    def stamp(self) -> Stamp:
        return Stamp(wall_ms=self.wall_ms, mono_ms=self.mono_ms, boot="b0070001", synced=True)

    def monotonic(self) -> float:
        return self.mono_ms / 1000

    def advance(self, s: float) -> None:
        self.wall_ms += round(s * 1000)
        self.mono_ms += round(s * 1000)


def _dock(local: datetime.datetime) -> tuple[Dock, _Clock]:
    clock = _Clock(local)
    dock = Dock.from_config(_dock_config(), clock, master=any_scheme_master(), recalls=any_scheme_recalls())
    return dock, clock


def _scan(data: bytes, clock: _Clock) -> Scan:
    parsed = parse_scan(data)
    scan = Scan(
        seq=1,
        ts=clock.wall_ms,
        boot="b0070001",
        mono=clock.mono_ms,
        synced=True,
        scanner="dock2-s1",
        **dataclasses.asdict(parsed),
    )
    return validate(scan)


def _hibc(body: str) -> bytes:
    return (body + check_character(body)).encode()


def test_dock_an_hibc_scan_of_a_recalled_lot_from_the_scanners_bytes() -> None:
    dock, clock = _dock(datetime.datetime(2025, 3, 4, 10, 0, tzinfo=BERLIN))
    scan = _scan(_hibc("+A123CATH120/$$3271231LOT17"), clock)
    assert (scan.scheme, scan.hibc, scan.hibc_uom, scan.lot) == (Scheme.HIBC, CATHETER_HIBC, 0, "LOT17")
    alerts = dock.observe(scan)
    assert steps(alerts) == [("raised", RECALLED, "warning")]
    assert alerts[0].subject == "dock2"


def test_dock_an_ma_scan_of_a_quarantined_pump_and_its_own_tor_budget() -> None:
    dock, clock = _dock(datetime.datetime(2025, 3, 4, 10, 0, tzinfo=BERLIN))
    scan = _scan(b"]Q1MA.156.M0.100001.0001A.M20250115.L24B.E20270531.S77", clock)
    assert (scan.scheme, scan.ma, scan.produced) == (Scheme.MA, PUMP_MA, datetime.date(2025, 1, 15))
    assert steps(dock.observe(scan)) == [("raised", QUARANTINED, "warning")]
    clock.advance(PUMP_TOR_S / 2)
    assert steps(dock.tick()) == [("raised", TOR, "warning")]  # 2-8 °C pump on the 15-25 °C dock


@pytest.mark.parametrize(("local_hour", "expected"), [(13, {NEAR_EXPIRY}), (14, {EXPIRED})])
def test_dock_judges_an_expiry_hour_by_the_sites_clock(local_hour: int, expected: set[str]) -> None:
    """Lot L1 expires at 14:00 on 2025-03-04 (master data); 14:00 in Berlin is 13:00 UTC."""
    dock, clock = _dock(datetime.datetime(2025, 3, 4, local_hour, 30, tzinfo=BERLIN))
    scan = _scan(_hibc("+A123CATH120/$$7L1"), clock)
    assert (scan.hibc, scan.lot, scan.expiry) == (CATHETER_HIBC, "L1", None)
    assert rules(dock.observe(scan)) == expected


def test_dock_a_gs1_expiry_hour_and_best_before_from_the_label() -> None:
    dock, clock = _dock(datetime.datetime(2025, 3, 4, 9, 0, tzinfo=BERLIN))
    label = b"]d2" + b"01" + INSULIN.encode() + b"7003" + b"2503040900" + b"15250301" + b"10LOT42"
    scan = _scan(label, clock)
    assert (scan.expiry, scan.expiry_hour, scan.best_before) == (TODAY, 9, datetime.date(2025, 3, 1))
    assert rules(dock.observe(scan)) == {EXPIRED}  # best-before passed too, but expired says more
    label = b"]d2" + b"01" + INSULIN.encode() + b"15250301" + b"10LOT42"
    assert rules(dock.observe(_scan(label, clock))) == {BEST_BEFORE_PASSED}


# -- hypothesis: whatever an HIBC or MA scanner sends, the scan validates and the door copes -----------

_ALNUM = st.text(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=22)
_DIGITS = st.text(st.sampled_from("0123456789"), min_size=0, max_size=12)
_TWO = st.integers(0, 39).map(lambda n: f"{n:02d}")  # months, days and hours, some that do not exist
_SECONDARY = st.one_of(
    st.builds(lambda y, m, d, h, lot: f"$$4{y}{m}{d}{h}{lot}", _TWO, _TWO, _TWO, _TWO, _ALNUM),
    st.builds(lambda y, j, h, lot: f"$$6{y}{j:03d}{h}{lot}", _TWO, st.integers(0, 399), _TWO, _ALNUM),
    st.builds(lambda d, lot: f"$${d}{lot}", _DIGITS, _ALNUM),
    st.builds(lambda q, d, lot: f"$$8{q}{d}{lot}", _DIGITS, _DIGITS, _ALNUM),
    st.builds(lambda q, d, lot: f"$$9{q}{d}{lot}", _DIGITS, _DIGITS, _ALNUM),
    st.builds(lambda d, s: f"$$+{d}{s}", _DIGITS, _ALNUM),
    st.builds(lambda lot: f"${lot}", _ALNUM),
    st.builds(lambda d, lot: f"{d}{lot}", _DIGITS, _ALNUM),
)
_SUPPLEMENTAL = st.one_of(
    st.builds(lambda d: f"/14D{d}", _DIGITS), st.builds(lambda d: f"/16D{d}", _DIGITS), st.just("/S1234")
)
HIBC_TEXT = st.builds(
    lambda lic, product, uom, secondary, supplemental, checked: (
        (body := f"+{lic}{product}{uom}" + (f"/{secondary}" if secondary else "") + supplemental)
        + (check_character(body) if checked else "A")
    ),
    st.sampled_from(["A123", "B456", "Z999", "E208", "1BAD", "A12"]),
    st.sampled_from([CATHETER_HIBC[4:], STENT_HIBC[4:], INSULIN_HIBC[4:], "X", "PRODUCTCODE123456789"]),
    st.sampled_from("0125"),
    st.one_of(st.none(), _SECONDARY),
    st.one_of(st.just(""), _SUPPLEMENTAL),
    st.booleans(),
)
MA_TEXT = st.builds(
    lambda fields, units: "MA." + ".".join(fields) + "".join(units),
    st.lists(
        st.sampled_from(["156", "M0", "100001", "0001A", "X" * 17, "", "a_b-c"]), min_size=1, max_size=6
    ),
    st.lists(
        st.builds(lambda letter, value: f".{letter}{value}", st.sampled_from("LSMEVDQ"), _DIGITS), max_size=4
    ),
)

_CHECK_DOCK, _CHECK_CLOCK = _dock(datetime.datetime(2025, 3, 4, 13, 59, tzinfo=BERLIN))


@settings(max_examples=300, deadline=None)
@given(st.one_of(HIBC_TEXT, MA_TEXT), st.sampled_from(["", "]d1", "]Q1"]))
def test_any_hibc_or_ma_text_parses_validates_and_is_judged(text: str, symbology: str) -> None:
    scan = _scan((symbology + text).encode("latin-1"), _CHECK_CLOCK)
    assert not any(e.startswith("parser failed") for e in scan.errors), scan.errors
    if scan.hibc is not None:
        assert scan.scheme is Scheme.HIBC and scan.hibc_uom is not None
    if scan.ma is not None:
        assert scan.scheme is Scheme.MA and scan.ma == "MA." + ".".join(text.split(".")[1:5])
    for alert in _CHECK_DOCK.observe(scan):
        check_valid(alert)
