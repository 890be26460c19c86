"""Reconciliation at the dock: the issue's passes as data (``tests/testcases/documents/``), and the
properties that make it derived rather than kept: any order of the same items gives the same answer, and
no count exceeds the distinct units seen."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.cloud.documents.binding import bind_all
from coldgate.cloud.documents.model import DocumentKind, Line
from coldgate.cloud.documents.reconciliation import INFO_KINDS, KINDS, reconcile
from tests.rig import binding as d
from tests.rig.cases import each_case, read_expected, read_input


@each_case("documents")
def test_case(case: Path) -> None:
    assert d.run_case(read_input(case)) == read_expected(case)


def test_every_cbv_word_is_one_of_the_vocabularys() -> None:
    cbv = {"completeness_verified", "completeness_inferred", "mismatch_instance", "mismatch_class",
           "mismatch_quantity", "recalled", "expired"}  # fmt: skip
    assert {w for w in KINDS.values() if w is not None} <= cbv
    assert INFO_KINDS <= set(KINDS)


def test_a_foreign_case_of_the_lines_product_is_an_unexpected_instance() -> None:
    catalog = d.index()
    note = d.pallet_note(3)
    items = d.observe_movements(d.pallet_pass([1, 2, 3, 9]), catalog)
    result = reconcile(note, bind_all(items, [note]), catalog, d.TODAY)
    (found,) = result.discrepancies
    assert (found.kind, found.cbv, found.line, found.units) == (
        "unexpected_instance", "mismatch_instance", 1, (f"serial:INSULIN/{d.serial(9)}",)
    )  # fmt: skip
    assert not result.complete and result.completeness is None


def test_an_item_naming_nothing_stays_visible_as_unidentified() -> None:
    catalog = d.index(gtins={})
    doc = d.document([Line(1, "INSULIN", 1)])
    items = d.observe_movements([d.case_movement(1, 1)], catalog)
    result = reconcile(doc, bind_all(items, [doc]), catalog, d.TODAY)
    assert [x.kind for x in result.discrepancies] == ["unidentified", "missing"]
    assert d.gtin("INSULIN") in result.discrepancies[0].detail


def test_a_tag_of_an_unknown_product_read_twice_is_one_unit() -> None:
    catalog = d.index(gtins={})
    doc = d.document([Line(1, "INSULIN", 1)])
    items = d.observe_movements([d.case_movement(1, 1), d.case_movement(2, 1)], catalog)
    result = reconcile(doc, bind_all(items, [doc]), catalog, d.TODAY)
    assert (result.units_seen, result.duplicates) == (1, 1)


def test_a_pallet_the_document_does_not_list_is_unexpected_not_unidentified() -> None:
    catalog = d.index()
    doc = d.document([Line(1, "INSULIN", 1)])
    items = d.observe_movements([d.pallet_movement(1, 7), d.case_movement(2, 1)], catalog)
    result = reconcile(doc, bind_all(items, [doc]), catalog, d.TODAY)
    (found,) = result.discrepancies
    assert (found.kind, found.cbv, found.units) == ("unexpected", "mismatch_class", (f"sscc:{d.sscc(7)}",))


def test_a_case_scanned_after_the_portal_read_it_is_a_duplicate() -> None:
    catalog = d.index()
    doc = d.document([Line(1, "INSULIN", 1)], kind=DocumentKind.DISPATCH)
    tag = d.observe_movements([d.case_movement(1, 1, direction="out")], catalog)
    label = d.observe_scans([d.scan(2, gtin=d.gtin("INSULIN"), lot="L1", serial=d.serial(1))], catalog)
    result = reconcile(doc, bind_all(tag + label, [doc]), catalog, d.TODAY)
    assert (result.seen, result.units_seen, result.duplicates) == (1, 1, 1)
    assert result.complete and [x.kind for x in result.discrepancies] == ["duplicate"]


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[object, list[object]]:
    first = draw(st.integers(1, 400))
    cases = draw(st.integers(1, 30))
    line = Line(
        1, "INSULIN", cases, lot=draw(st.sampled_from([None, "L1"])), ssccs=(d.sscc(1),),
        serials=tuple(d.serial(first + k) for k in range(cases)) if draw(st.booleans()) else (),
    )  # fmt: skip
    doc = d.document([line, Line(2, "VACCINE", draw(st.integers(1, 3)))])
    movements = []
    for seq in range(1, draw(st.integers(1, 60)) + 1):
        if draw(st.integers(0, 9)) == 0:
            movements.append(d.pallet_movement(seq, draw(st.sampled_from([1, 2]))))
        else:
            n = draw(st.integers(max(1, first - 5), first + cases + 5))
            movements.append(d.case_movement(seq, n, product=draw(st.sampled_from(["INSULIN", "VACCINE"]))))
    return doc, d.observe_movements(movements, d.index())


@settings(max_examples=60, deadline=None)
@given(_scenario(), st.randoms(use_true_random=False), st.integers(0, 10), st.integers(0, 400))
def test_reconciliation_is_the_same_for_any_order_and_counts_each_unit_once(
    scenario: tuple[object, list[object]], rng: random.Random, repeats: int, days: int
) -> None:
    doc, items = scenario
    catalog = d.index()
    today = datetime.date(2026, 1, 1) + datetime.timedelta(days=days)
    reference = reconcile(doc, bind_all(items, [doc]), catalog, today, short_dated_days=90)  # type: ignore[arg-type]

    shuffled = items + [rng.choice(items) for _ in range(repeats)]
    rng.shuffle(shuffled)
    bindings = list(bind_all(shuffled, [doc]))  # type: ignore[arg-type, list-item]
    rng.shuffle(bindings)
    assert reconcile(doc, bindings + bindings[:repeats], catalog, today, short_dated_days=90) == reference  # type: ignore[arg-type]

    distinct = {i.identified.unit for i in items}  # type: ignore[attr-defined]
    assert reference.units_seen == len(distinct)
    assert reference.seen <= sum(line.quantity for line in doc.lines) + len(distinct)  # type: ignore[attr-defined]
    for line in reference.lines:
        assert line.seen <= len(distinct) or line.completeness == "completeness_inferred"
    for found in reference.discrepancies:  # a unit named is one seen, or (missing) one expected and not seen
        assert (
            set(found.units).isdisjoint(distinct) if found.kind == "missing" else set(found.units) <= distinct
        )
    assert reference.duplicates == len(items) - len(distinct)
