"""The retention rule (``cloud/db/retention.py``), pure: when a month's readings may go, given the lots
kept in it; and the product's retention category as the catalog, the CSV import and the API take it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from coldgate.cloud.catalog.products import product, put_product
from coldgate.cloud.config import RetentionConfig, cloud_config_from_document
from coldgate.cloud.db.purge import LotSpans, lots_in
from coldgate.cloud.db.retention import (
    CATEGORIES,
    KeptLot,
    RetentionPolicy,
    add_years,
    month_end,
    purge_from,
    retention,
)
from coldgate.cloud.identity.users import UserInputError
from coldgate.configfile import ConfigError
from tests.rig.catalog import make_catalog
from tests.rig.documents import QA

MARCH = datetime.date(2020, 3, 1)
POLICY = RetentionPolicy()
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)


def _lot(category: str | None, expiry: datetime.date | None, name: str = "L1") -> KeptLot:
    return KeptLot("P1", name, category, expiry)


def test_a_month_that_kept_nothing_or_standard_goods_goes_five_years_after_it_ends() -> None:
    assert purge_from(MARCH, POLICY, []) == datetime.date(2025, 4, 1)
    kept = retention(datetime.date(2020, 3, 17), POLICY, [_lot("standard", None)])
    assert (kept.month, kept.purge_from, kept.held_by, kept.lots) == (
        MARCH,
        datetime.date(2025, 4, 1),
        None,
        1,
    )
    assert "standard term: 5 years after 2020-03" in kept.rule
    assert purge_from(datetime.date(2020, 12, 1), POLICY, []) == datetime.date(2026, 1, 1)


def test_a_device_lot_keeps_the_month_two_years_past_its_expiry_never_less_than_the_standard() -> None:
    late = _lot("device", datetime.date(2029, 6, 30))
    kept = retention(MARCH, POLICY, [late, _lot("standard", None, "L2")])
    assert kept.purge_from == datetime.date(2031, 7, 1) and kept.held_by == late
    assert kept.rule == "device lot L1 of P1 expires 2029-06-30: kept 2 years past it"
    assert purge_from(MARCH, POLICY, [_lot("device", datetime.date(2020, 5, 31))]) == datetime.date(
        2025, 4, 1
    )


def test_an_implant_a_device_without_expiry_or_an_unknown_product_keep_the_month_for_ever() -> None:
    for lot, why in (
        (_lot("implant", datetime.date(2021, 1, 1)), "an implant's readings are kept for ever"),
        (_lot("device", None), "the lot has no expiry to count 2 years from"),
        (_lot(None, datetime.date(2021, 1, 1)), "its product is not in the catalog"),
        (_lot("perishable", datetime.date(2021, 1, 1)), "'perishable' is unknown"),
    ):
        kept = retention(MARCH, POLICY, [_lot("device", datetime.date(2030, 1, 1), "L0"), lot])
        assert kept.purge_from is None and kept.held_by == lot and why in kept.rule
        assert not kept.due(datetime.date(9999, 12, 31))


def test_a_lot_under_an_open_recall_or_quarantine_holds_the_month_whatever_its_term() -> None:
    held = KeptLot("P1", "L1", "standard", datetime.date(2020, 6, 1), "recall R-7 is open")
    kept = retention(MARCH, POLICY, [held])
    assert (
        kept.purge_from is None
        and kept.rule == "standard lot L1 of P1: held while recall R-7 is open, whatever its term"
    )


def test_an_implant_term_when_configured_counts_from_the_expiry() -> None:
    policy = RetentionPolicy(standard_years=6, device_years_after_expiry=3, implant_years_after_expiry=15)
    assert purge_from(MARCH, policy, [_lot("implant", datetime.date(2024, 2, 29))]) == datetime.date(
        2039, 3, 2
    )
    assert purge_from(MARCH, policy, []) == datetime.date(2026, 4, 1)
    assert add_years(datetime.date(2024, 2, 29), 1) == datetime.date(2025, 3, 1)  # the later day


_days = st.dates(datetime.date(2000, 1, 1), datetime.date(2100, 12, 31))
_lots = st.builds(
    KeptLot,
    st.sampled_from(["P1", "P2"]),
    st.sampled_from(["A", "B", "C"]),
    st.sampled_from([*CATEGORIES, None]),
    st.one_of(st.none(), _days),
    st.one_of(st.none(), st.just("recall R-1 is open")),
)
_policies = st.builds(
    RetentionPolicy,
    st.integers(5, 30),
    st.integers(2, 30),
    st.one_of(st.none(), st.integers(2, 50)),
)


def _later_or_equal(a: datetime.date | None, b: datetime.date | None) -> bool:
    return a is None or (b is not None and a >= b)


@given(_days, _policies, st.lists(_lots, max_size=6), _lots)
def test_adding_a_lot_never_makes_the_date_earlier(
    day: datetime.date, policy: RetentionPolicy, lots: list[KeptLot], more: KeptLot
) -> None:
    before = purge_from(day, policy, lots)
    after = purge_from(day, policy, [*lots, more])
    assert _later_or_equal(after, before)
    assert _later_or_equal(after, purge_from(day, policy, [more]))


@given(_days, _policies, st.lists(_lots, max_size=6))
def test_the_date_is_never_before_the_standard_term_and_order_does_not_matter(
    day: datetime.date, policy: RetentionPolicy, lots: list[KeptLot]
) -> None:
    kept = retention(day, policy, lots)
    assert _later_or_equal(kept.purge_from, add_years(month_end(day), policy.standard_years))
    assert retention(day, policy, list(reversed(lots))) == kept
    assert kept.lots == len(set(lots))
    if any(lot.category == "implant" for lot in lots) and policy.implant_years_after_expiry is None:
        assert kept.purge_from is None


def test_a_lot_concerns_the_months_it_was_held_in_and_one_still_held_every_later_one() -> None:
    gone = LotSpans(KeptLot("P", "GONE", "implant", None), ((100, 200),))
    still = LotSpans(KeptLot("P", "HERE", "device", None), ((150, 180), (300, None)))
    never = LotSpans(KeptLot("P", "LISTED", "implant", None), ())
    lots = [gone, still, never]
    assert lots_in(lots, 0, 100) == []
    assert lots_in(lots, 199, 250) == [gone.lot]
    assert lots_in(lots, 200, 300) == []
    assert lots_in(lots, 10**12, 10**12 + 1) == [still.lot]


def test_the_config_block_has_the_defaults_and_refuses_a_term_below_the_floor() -> None:
    config = cloud_config_from_document({}, "cloud.toml")
    assert config.retention == RetentionConfig()
    assert RetentionPolicy.from_config(config.retention) == POLICY
    set_ = cloud_config_from_document({"retention": {"implant_years_after_expiry": 20}}, "cloud.toml")
    assert RetentionPolicy.from_config(set_.retention).implant_years_after_expiry == 20
    with pytest.raises(ConfigError, match=r"retention\.standard_years"):
        cloud_config_from_document({"retention": {"standard_years": 4}}, "cloud.toml")


def _vx10(conn: Any) -> dict[str, Any]:
    fields = {k: v for k, v in product(conn, "VX10").items() if k in ("name", "gtin", "temperature_class")}
    return {**fields, "serialised": True}


def test_a_product_s_category_is_checked_and_kept_when_a_writer_does_not_name_it(engine: Engine) -> None:
    make_catalog(engine)
    with engine.begin() as conn:
        assert product(conn, "VX10")["retention"] is None, "made without one: not categorised, kept for ever"
        fields = _vx10(conn)
        with pytest.raises(UserInputError, match=r"retention: 'forever' is not a retention category"):
            put_product(conn, "VX10", {**fields, "retention": "forever"}, reason="x", by=QA, now=NOW)
        put_product(conn, "VX10", {**fields, "retention": "implant"}, reason="an implant", by=QA, now=NOW)
        put_product(conn, "VX10", {**fields, "name": "Renamed"}, reason="name", by=QA, now=NOW)
        assert product(conn, "VX10")["retention"] == "implant"


def test_the_api_and_the_csv_import_take_the_category_and_name_the_field_when_wrong(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from coldgate.cloud.api import ApiTokens, create_app
    from tests.rig.people import bearer, person

    make_catalog(engine)
    manager = bearer(person(engine, "marta", ("qa_manager",))[1])
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        url = "/catalog/products/VX10"
        body = {"name": "Vaccine X", "gtin": "4006381333931", "temperature_class": "2-8C", "serialised": True}
        refused = client.put(url, json={**body, "retention": "eternal", "reason": "r"}, headers=manager)
        assert refused.status_code == 422, refused.text
        [detail] = refused.json()["detail"]
        assert (
            detail["loc"] == ["body", "retention"]
            and "'eternal' is not a retention category" in detail["msg"]
        )
        made = client.put(url, json={**body, "retention": "device", "reason": "a device"}, headers=manager)
        assert made.status_code == 200 and made.json()["retention"] == "device", made.text
        kept = client.put(url, json={**body, "reason": "no category named"}, headers=manager)
        assert kept.json()["retention"] == "device" and kept.json()["version"] == 3
        assert client.get(url, headers=manager).json()["retention"] == "device"

        def post(data: str) -> Any:
            return client.post(
                "/catalog/import/products",
                params={"reason": "ERP load"},
                content=data.encode(),
                headers={**manager, "Content-Type": "text/csv"},
            )

        bad = post(
            "id,name,ma_id,temperature_class,retention\nP9,Stent,MA.156.M0.100009.STENT,2-8C,forever\n"
        )
        assert bad.status_code == 422, bad.text
        assert [(e["line"], e["column"], e["value"]) for e in bad.json()["detail"]] == [
            (2, "retention", "forever")
        ]
        assert "is not a retention category (standard, device, implant)" in bad.json()["detail"][0]["why"]
        good = post(
            "id,name,ma_id,temperature_class,retention\nP9,Stent,MA.156.M0.100009.STENT,2-8C,implant\n"
        )
        assert good.status_code == 200, good.text
        assert client.get("/catalog/products/P9", headers=manager).json()["retention"] == "implant"
        # A file without the column changes nothing of the category in force.
        again = post("id,name,ma_id,temperature_class\nP9,Stent,MA.156.M0.100009.STENT,2-8C\n")
        assert again.json()["unchanged"] == 1, again.text
        assert client.get("/catalog/products/P9", headers=manager).json()["retention"] == "implant"


def test_the_catalog_page_shows_each_product_s_retention(browser: Any, engine: Engine, db_url: str) -> None:
    from playwright.sync_api import expect

    from tests.rig.browser import serve_web_app, shot, sign_in
    from tests.rig.people import person

    if not db_url.startswith("sqlite"):
        pytest.skip("one dialect is enough for a page")
    make_catalog(engine)
    with engine.begin() as conn:
        put_product(
            conn, "VX10", {**_vx10(conn), "retention": "implant"}, reason="an implant", by=QA, now=NOW
        )
    person(engine, "vera", ("viewer",))
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.click("nav >> text=Catalog")
        expect(page.locator('tr[data-product="VX10"] td.retention')).to_have_text("implant")
        expect(page.locator('tr[data-product="PLAIN"] td.retention')).to_have_text("not set: kept for ever")
        shot(page, "catalog-products-retention")
        page.goto(site + "/dashboard/catalog/product?product=VX10")
        expect(page.locator("body")).to_contain_text("implant")
        shot(page, "catalog-product-history-retention")
        context.close()
