"""Binding movements and scans to the open document at their door: identifiers, candidates, tie-breaks,
nothing dropped, and the same bindings whatever the order (DESIGN.md principles 2 and 9)."""

from __future__ import annotations

import ast
import dataclasses
import datetime
import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.cloud.documents.binding import Observed, bind, bind_all
from coldgate.cloud.documents.identifiers import identify_movement, identify_scan
from coldgate.cloud.documents.model import DocumentKind, DocumentState, Line
from tests.rig import binding as d

PURE_MODULES = ("identifiers.py", "binding.py", "reconciliation.py", "custody.py", "model.py")
DOCUMENTS_DIR = Path(__file__).resolve().parent.parent / "cloud" / "documents"
ALLOWED_IMPORTS = {
    "__future__", "bisect", "collections", "collections.abc", "dataclasses", "datetime", "enum", "hashlib",
    "json", "msgspec", "typing",
    "coldgate.contract.items", "coldgate.gateway.readers.epc", "coldgate.cloud.documents.model",
    "coldgate.cloud.documents.identifiers", "coldgate.cloud.documents.binding",
}  # fmt: skip
FORBIDDEN_ATTRS = {
    "now",
    "utcnow",
    "today",
    "time_ns",
    "monotonic",
    "perf_counter",
    "sleep",
    "getenv",
    "environ",
}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_binding_modules_are_pure(name: str) -> None:
    """No database, socket or clock: the allow-list names every module they may import."""
    tree = ast.parse((DOCUMENTS_DIR / name).read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names if a.name not in ALLOWED_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "") not in ALLOWED_IMPORTS:
            problems.append(node.module or "")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            problems.append(f".{node.attr} at line {node.lineno}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"open", "print"}
        ):
            problems.append(f"{node.func.id}() at line {node.lineno}")
    assert problems == []


# --- identifiers -------------------------------------------------------------------------------------


def test_a_case_tag_names_product_serial_and_through_its_serial_the_lot_and_expiry() -> None:
    found = identify_movement(d.case_movement(1, 7), d.index())
    assert (found.product, found.serial, found.lot, found.expiry) == (
        "INSULIN",
        "1007",
        "L1",
        datetime.date(2028, 1, 31),
    )
    assert found.unresolved == () and found.unit == "serial:INSULIN/1007"


def test_a_pallet_tag_names_its_sscc() -> None:
    found = identify_movement(d.pallet_movement(1, 1), d.index())
    assert found.sscc == d.sscc(1) and found.product is None and found.unit == f"sscc:{d.sscc(1)}"


def test_a_tag_of_an_unknown_product_is_kept_with_the_reason() -> None:
    found = identify_movement(d.case_movement(1, 7), d.index(gtins={}))
    assert found.product is None and found.serial == "1007"
    assert [u.field for u in found.unresolved] == ["gtin"]
    assert d.gtin("INSULIN") in found.unresolved[0].reason


def test_a_serial_in_no_lot_is_said() -> None:
    found = identify_movement(d.case_movement(1, 5000), d.index())
    assert found.product == "INSULIN" and found.lot is None
    assert "in no known lot" in found.unresolved[0].reason


def test_an_undecodable_epc_is_kept_with_the_decoders_reason() -> None:
    movement = msgspec.structs.replace(d.case_movement(1, 7), epc="e2801160600002", epc_uri=None)
    found = identify_movement(movement, d.index())
    assert found.product is None and found.unresolved[0].field == "epc"


@pytest.mark.parametrize(
    ("fields", "product"),
    [
        ({"gtin": "GTIN:INSULIN", "lot": "L2", "serial": "1600"}, "INSULIN"),
        ({"hibc": d.HIBC_CODE, "hibc_uom": 3, "lot": "H1"}, "SYRINGE"),
        ({"hibc": d.HIBC_CODE, "hibc_uom": None, "lot": "H1"}, "SYRINGE"),
        ({"ma": d.MA_ID, "lot": "M1", "quantity": 10}, "STENT"),
    ],
    ids=["gs1", "hibc_with_uom_matches_a_product_of_any_uom", "hibc_without_uom", "ma"],
)
def test_scans_of_each_scheme_resolve_through_the_index(fields: dict[str, object], product: str) -> None:
    if fields.get("gtin") == "GTIN:INSULIN":
        fields = {**fields, "gtin": d.gtin("INSULIN")}
    found = identify_scan(d.scan(1, **fields), d.index())
    assert found.product == product and found.unresolved == ()
    assert found.lot == fields["lot"] and found.expiry is not None
    assert found.quantity == fields.get("quantity", 1)


def test_hibc_with_a_uom_prefers_the_product_of_that_uom() -> None:
    catalog = d.index(hibc={(d.HIBC_CODE, None): "SYRINGE", (d.HIBC_CODE, 3): "SYRINGE-BOX"})
    assert identify_scan(d.scan(1, hibc=d.HIBC_CODE, hibc_uom=3), catalog).product == "SYRINGE-BOX"
    assert identify_scan(d.scan(1, hibc=d.HIBC_CODE, hibc_uom=1), catalog).product == "SYRINGE"


def test_the_labels_expiry_wins_over_the_lots() -> None:
    label_expiry = datetime.date(2027, 3, 1)
    found = identify_scan(d.scan(1, gtin=d.gtin("INSULIN"), lot="L1", expiry=label_expiry), d.index())
    assert found.expiry == label_expiry


def test_a_raw_scan_is_kept_with_its_errors() -> None:
    found = identify_scan(d.scan(1, scheme="raw", errors=["no symbology identifier"]), d.index())
    assert found.product is None and found.unresolved[0].reason == "no symbology identifier"


# --- binding -----------------------------------------------------------------------------------------


def test_pallet_and_cases_bind_to_the_note_line_by_sscc_and_serial() -> None:
    note = d.pallet_note(3)
    bindings = bind_all(d.observe_movements(d.pallet_pass([1, 2, 3]), d.index()), [note])
    assert [(b.document, b.line, b.how) for b in bindings] == [("RN-1", 1, "sscc")] + [
        ("RN-1", 1, "serial")
    ] * 3


def test_a_foreign_case_binds_to_the_document_without_a_line() -> None:
    note = d.pallet_note(3)
    (item,) = d.observe_movements([d.case_movement(1, 7, product="VACCINE")], d.index())
    binding = bind(item, [note])
    assert (binding.document, binding.line, binding.how) == ("RN-1", None, "unexpected")


def test_no_open_document_leaves_the_item_unbound_at_its_door_with_the_reason() -> None:
    (item,) = d.observe_movements([d.case_movement(1, 7)], d.index())
    for documents in (
        [],
        [dataclasses.replace(d.pallet_note(3), state=DocumentState.DRAFT)],
        [dataclasses.replace(d.pallet_note(3), state=DocumentState.COMPLETED)],
        [d.document([], door="dock9")],
        [d.document([], opened_at=item.time + 1)],
        [d.document([], closed_at=item.time)],
        [d.document([], opened_at=None)],
    ):
        binding = bind(item, documents)
        assert binding.document is None and binding.how == "unbound"
        assert binding.observed.door == d.DOOR and "door dock1" in binding.reason


def test_direction_must_fit_the_documents_kind() -> None:
    (item,) = d.observe_movements([d.case_movement(1, 7, direction="out")], d.index())
    binding = bind(item, [d.pallet_note(10)])
    assert binding.document is None and "direction out fits none" in binding.reason
    dispatch = d.document([Line(1, "INSULIN", 5)], id="DO-1", kind=DocumentKind.DISPATCH)
    assert bind(item, [d.pallet_note(10), dispatch]).document == "DO-1"
    transfer = d.document([Line(1, "INSULIN", 5)], id="TR-1", kind=DocumentKind.TRANSFER)
    assert bind(item, [transfer]).document == "TR-1"


def test_unknown_direction_binds_only_when_unambiguous() -> None:
    (item,) = d.observe_movements([d.case_movement(1, 7, direction="unknown")], d.index())
    note = d.pallet_note(10)
    dispatch = d.document([Line(1, "VACCINE", 5)], id="DO-1", kind=DocumentKind.DISPATCH)
    assert bind(item, [note]).document == "RN-1"  # the only open document at the door
    assert bind(item, [note, dispatch]).document == "RN-1"  # the only one naming the case
    other = d.document([Line(1, "INSULIN", 5)], id="DO-2", kind=DocumentKind.DISPATCH)
    binding = bind(item, [note, other])
    assert binding.document is None and binding.reason.endswith("could take it: DO-2, RN-1")


def test_several_candidates_the_strongest_match_wins_then_the_latest_opened_then_the_id() -> None:
    (item,) = d.observe_movements([d.case_movement(1, 7)], d.index())
    by_serial = d.pallet_note(10, id="RN-B")
    by_product = d.document([Line(1, "INSULIN", 5)], id="RN-A", opened_at=d.T0 + 10)
    assert bind(item, [by_product, by_serial]).document == "RN-B"
    older = d.document([Line(1, "INSULIN", 5)], id="RN-C", opened_at=d.T0)
    newer = d.document([Line(1, "INSULIN", 5)], id="RN-D", opened_at=d.T0 + 5)
    assert bind(item, [older, newer]).document == "RN-D"
    twin = d.document([Line(1, "INSULIN", 5)], id="RN-E", opened_at=d.T0 + 5)
    assert bind(item, [twin, newer]).document == "RN-D"


@pytest.mark.parametrize(
    ("lines", "line", "how"),
    [
        ([Line(1, "INSULIN", 5, lot="L2"), Line(2, "INSULIN", 5, lot="L1")], 2, "product_lot"),
        ([Line(1, "INSULIN", 5, lot="L2"), Line(2, "INSULIN", 5)], 2, "product"),
        ([Line(3, "INSULIN", 5, lot="L2"), Line(2, "INSULIN", 5, lot="LQ")], 2, "other_lot"),
        ([Line(1, "VACCINE", 5)], None, "unexpected"),
    ],
    ids=["lot_line_first", "then_a_line_with_no_lot", "else_another_lot_lowest_line", "else_no_line"],
)
def test_line_choice_by_product_and_lot(lines: list[Line], line: int | None, how: str) -> None:
    (item,) = d.observe_movements([d.case_movement(1, 7)], d.index())  # INSULIN lot L1
    binding = bind(item, [d.document(lines)])
    assert (binding.line, binding.how) == (line, how)


def test_batch_binds_each_item_key_once_sorted() -> None:
    items = d.observe_movements(d.pallet_pass([1, 2, 3]), d.index())
    again = bind_all([*items, *reversed(items)], [d.pallet_note(3)])
    assert [b.item.seq for b in again] == [1, 2, 3, 4]


# --- properties --------------------------------------------------------------------------------------


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[object], list[Observed]]:
    catalog = d.index()
    n_docs = draw(st.integers(1, 4))
    documents = []
    for i in range(n_docs):
        kind = draw(st.sampled_from(list(DocumentKind)))
        first = draw(st.integers(1, 300))
        cases = draw(st.integers(0, 20))
        serials = tuple(d.serial(first + k) for k in range(cases))
        lot = draw(st.sampled_from([None, "L1", "L2"]))
        line = Line(1, draw(st.sampled_from(["INSULIN", "VACCINE"])), cases or 3, lot=lot, serials=serials)
        documents.append(
            d.document(
                [line],
                id=f"D{i}",
                kind=kind,
                door=draw(st.sampled_from([d.DOOR, "dock2"])),
                state=draw(st.sampled_from(list(DocumentState))),
                opened_at=d.T0 + draw(st.integers(0, 3)) * 1000,
                closed_at=draw(st.sampled_from([None, d.T0 + 5000, d.T0 + 50_000])),
            )
        )
    movements = [
        d.case_movement(
            seq,
            draw(st.integers(1, 1300)),
            product=draw(st.sampled_from(["INSULIN", "VACCINE"])),
            door=draw(st.sampled_from([d.DOOR, "dock2"])),
            direction=draw(st.sampled_from(["in", "out", "unknown"])),
            at=d.T0 + draw(st.integers(0, 60_000)),
        )
        for seq in range(1, draw(st.integers(1, 30)) + 1)
    ]
    return documents, d.observe_movements(movements, catalog)


@settings(max_examples=60, deadline=None)
@given(_scenario(), st.randoms(use_true_random=False), st.integers(0, 5))
def test_any_order_and_repetition_gives_identical_bindings(
    scenario: tuple[list[object], list[Observed]], rng: random.Random, repeats: int
) -> None:
    documents, items = scenario
    reference = bind_all(items, documents)  # type: ignore[arg-type]
    shuffled = items + [rng.choice(items) for _ in range(repeats)]
    rng.shuffle(shuffled)
    docs = list(documents)
    rng.shuffle(docs)
    assert bind_all(shuffled, docs) == reference  # type: ignore[arg-type]
    assert {b.item for b in reference} == {i.key for i in items}  # nothing dropped, nothing doubled
    assert all(bind(b.observed, documents) == b for b in reference)  # type: ignore[arg-type]
