"""Issue 15: "re-running binding over all stored items gives identical results", held on the database
side (``cloud/documents/binding_store.py``) over random documents and random pass orders, on both
dialects.

``tests/test_documents_binding.py`` already holds the *pure* ``bind_all`` to any order and repetition
of items against one fixed set of documents.  What it cannot see is the store: documents that move
(released, started, completed, closed, sent back to draft and released again, at another door) while
passes happen, batches that arrive late, out of order and twice through the real ingest path, the
scheduler's binding runs falling anywhere in between, each binding only part of what is pending, and the
dock's own decisions on the way: items left unbound at a door assigned by hand to a document being
worked (``dock_decisions.assign_item``), open discrepancies accepted by QA so a document can complete.
The rows bound that way, a step at a time, must be exactly the rows ``rebind`` computes afterwards from
the stored items and the documents' versions (and again, a second time), and every document's
reconciliation must be the same from either.

Causality is kept as at a real dock: an item is stored after it happened (its time is before the step
it is delivered in), and a move is recorded at the step's time; nothing else is constrained.  Each
example works at a site and with a gateway of its own, so the examples share one migrated database.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.db.models import BindingRow
from coldgate.cloud.documents.binding_store import bind_pending, rebind
from coldgate.cloud.documents.dock_decisions import accept_discrepancy, assign_item, judged_discrepancies
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.documents import document as document_record
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.documents.reconciliation_store import check_document
from coldgate.cloud.identity.enrolment import enrol_gateway
from coldgate.contract import examples
from coldgate.contract.items import Direction, Movement, Scan, Scheme
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.rfid_scenarios import sgtin96_hex, sscc96_hex
from tests.rig.cloud_db import ingest
from tests.rig.documents import DOCK, NOW, QA, QA_SIGNS, stock_the_dock
from tests.rig.ingest import batch_message

COMPANY = "4006381"
VX10_ITEM, SALINE_ITEM, STRANGER_ITEM = "033393", "044444", "055555"  # the last: a GTIN of no product
DOORS = ("D1", "D2")
#: Serials of VX10 the cases carry: lot L1 holds 1000-1019, lot L2 1020-1039; 1045 is in no lot.  Few, so
#: that passes often carry what the documents list.
SERIALS = (1000, 1001, 1002, 1003, 1020, 1021, 1022, 1045)
PALLETS = (1, 2)
START = NOW + datetime.timedelta(hours=1)
STEP_MS = 60_000
_examples = itertools.count(1)


def _gtin(item: str) -> str:
    found = decode_epc(sgtin96_hex(COMPANY, item, 1)).gtin
    assert found is not None
    return found


def _sscc(pallet: int) -> str:
    found = decode_epc(sscc96_hex(COMPANY, f"{pallet:010d}")).sscc
    assert found is not None
    return found


def _at(step: int) -> datetime.datetime:
    return START + datetime.timedelta(milliseconds=step * STEP_MS)


# --- what a scenario is made of -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    """One tag or label in a pass: a VX10 case (serial), a SALINE case, a case of no product, a pallet."""

    what: str  # "vx10" | "saline" | "stranger" | "pallet"
    number: int


@dataclass(frozen=True)
class Pass:
    """Tags through a door (a portal pass) or codes at a scanner, at ``step`` less ``before_ms``;
    delivered at ``delivered`` (>= step) and, if ``again``, once more at that later step."""

    step: int
    before_ms: int
    door: str
    direction: str  # in | out | unknown; "scan:s1" (placed at D1) or "scan:s2" (placed nowhere)
    tags: tuple[Tag, ...]
    delivered: int
    again: int | None


@dataclass(frozen=True)
class Scenario:
    documents: tuple[dict[str, Any], ...]
    moves: tuple[tuple[int, int, str, str | None], ...]  # (step, document, state, door), by step
    passes: tuple[Pass, ...]
    binds: tuple[tuple[int, int], ...]  # (step, limit): a binding run after the step's deliveries
    steps: int
    #: (step, pick, document, line): after the step's binding runs, the dock assigns by hand the
    #: ``pick``-th item left unbound at a door to the document, if it is open (line None: binding's pick)
    assigns: tuple[tuple[int, int, int, int | None], ...] = ()


SHAPES = ("serials", "lot", "pallet", "product", "saline")
_TRANSITIONS = {
    "draft": ("released",),
    "released": ("draft", "in_progress"),
    "in_progress": ("completed",),
    "completed": ("closed",),
    "closed": (),
}

_tags = st.one_of(
    st.builds(Tag, st.just("vx10"), st.sampled_from(SERIALS)),
    st.builds(Tag, st.just("saline"), st.integers(1, 3)),
    st.builds(Tag, st.just("stranger"), st.integers(1, 3)),
    st.builds(Tag, st.just("pallet"), st.sampled_from(PALLETS)),
)


@st.composite
def _line(draw: st.DrawFn, shape: str) -> dict[str, Any]:
    """A line of one shape (a document has each shape once: a serial or SSCC is on one line only)."""
    if shape == "serials":
        serials = draw(st.lists(st.sampled_from(SERIALS[:-1]), min_size=1, max_size=6, unique=True))
        lot = "L1" if all(s < 1020 for s in serials) else "L2" if all(s >= 1020 for s in serials) else None
        return {"product": "VX10", "lot": lot, "quantity": len(serials), "serials": [str(s) for s in serials]}
    if shape == "lot":
        return {
            "product": "VX10",
            "lot": draw(st.sampled_from(["L1", "L2"])),
            "quantity": draw(st.integers(1, 9)),
        }
    if shape == "pallet":
        return {"product": "VX10", "quantity": 20, "ssccs": [_sscc(draw(st.sampled_from(PALLETS)))]}
    if shape == "product":
        return {"product": "VX10", "quantity": draw(st.integers(1, 9))}
    return {"product": "SALINE", "quantity": draw(st.integers(1, 3))}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    steps = draw(st.integers(3, 10))
    n_docs = draw(st.integers(1, 3))
    documents = []
    for _ in range(n_docs):
        shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=2, unique=True))
        kind = draw(st.sampled_from(["receiving", "dispatch", "transfer"]))
        documents.append({"kind": kind, "lines": [draw(_line(shape)) for shape in shapes]})
    moves: list[tuple[int, int, str, str | None]] = []
    for doc in range(n_docs):
        state, at = "draft", draw(st.integers(0, steps // 3))
        for _ in range(draw(st.integers(1, 4))):
            if not _TRANSITIONS[state] or at >= steps:
                break
            state = draw(st.sampled_from(_TRANSITIONS[state]))
            door = draw(st.sampled_from(("D1", "D1", "D2"))) if state == "released" else None
            moves.append((at, doc, state, door))
            at += draw(st.integers(1, 5))
    passes = []
    for _ in range(draw(st.integers(1, 6))):
        step = draw(st.integers(0, steps - 1))
        delivered = draw(st.integers(step, steps - 1))
        again = draw(st.one_of(st.none(), st.integers(delivered, steps - 1)))
        way = draw(st.sampled_from(["in", "in", "out", "unknown", "scan:s1", "scan:s2"]))
        tags = draw(st.lists(_tags, min_size=1, max_size=6, unique=True))
        # Mostly within the step before its delivery; sometimes two steps back, before earlier moves.
        before = draw(st.one_of(st.integers(1, STEP_MS // 2), st.integers(1, 2 * STEP_MS)))
        door = draw(st.sampled_from(("D1", "D1", "D2")))
        passes.append(Pass(step, before, door, way, tuple(tags), delivered, again))
    binds = tuple(sorted(draw(st.lists(st.tuples(st.integers(0, steps - 1), st.integers(1, 8)), max_size=8))))
    hands = st.tuples(st.integers(0, steps - 1), st.integers(0, 20), st.integers(0, n_docs - 1),
                      st.sampled_from([None, 1]))  # fmt: skip
    assigns = tuple(sorted(draw(st.lists(hands, max_size=3)), key=lambda a: a[0]))
    return Scenario(tuple(documents), tuple(sorted(moves, key=lambda m: m[0])), tuple(passes), binds, steps,
                    assigns)  # fmt: skip


# --- the world --------------------------------------------------------------------------------------


def _catalog(engine: Engine) -> None:
    """The rig's catalog (VX10 lots L1 and L2, PLAIN) with VX10's serials and a second product."""
    stock_the_dock(engine)
    with engine.begin() as conn:
        saline = {
            "name": "Saline",
            "gtin": _gtin(SALINE_ITEM),
            "temperature_class": "2-8C",
            "serialised": True,
        }
        put_product(conn, "SALINE", saline, reason="new product", by=QA, now=NOW)
        add_serials(conn, "VX10", "L1", [], [("1000", "1019")], reason="ASN", by=QA, now=NOW)
        add_serials(conn, "VX10", "L2", [], [("1020", "1039")], reason="ASN", by=QA, now=NOW)


def _site(engine: Engine, n: int) -> tuple[str, str]:
    """A site of its own for one example: its cold room, yard, two dock doors, a gateway and its
    scanners (s1 at door D1, s2 placed nowhere)."""
    site, gateway = f"prop{n}", f"gw-prop{n}"
    with engine.begin() as conn:
        for key, kind in (("CR", "cold_room"), ("YARD", "ambient_store")):
            room = {"name": key, "kind": kind, "temperature_class": "2-8C"}
            put_location(conn, site, key, room, reason="survey", by=QA, now=NOW)
        for door in DOORS:
            fields = {"name": door, "kind": "dock_door", "inside": "CR", "outside": "YARD"}
            put_location(conn, site, door, fields, reason="survey", by=QA, now=NOW)
        enrol_gateway(conn, gateway, site, "password", NOW)
        since = int(NOW.timestamp() * 1000)
        place(conn, gateway, "scanner", "s1", "D1", since, reason="fixed scanner", by=QA, now=NOW)
    return site, gateway


def _items(scenario: Scenario) -> list[tuple[Pass, list[Movement | Scan]]]:
    """Each pass's items, numbered in pass order (a gateway numbers what it records as it records it)."""
    seq = 0
    out = []
    for one in scenario.passes:
        at = int(_at(one.step).timestamp() * 1000) - one.before_ms
        items: list[Movement | Scan] = []
        for k, tag in enumerate(one.tags):
            seq += 1
            stamp = {"seq": seq, "ts": at + k, "boot": examples.BOOT, "mono": 1000 + seq, "synced": True}
            if one.direction.startswith("scan:"):
                items.append(_scan(stamp, one.direction.removeprefix("scan:"), tag))
                continue
            if tag.what == "pallet":
                epc = sscc96_hex(COMPANY, f"{tag.number:010d}")
            else:
                item = {"vx10": VX10_ITEM, "saline": SALINE_ITEM, "stranger": STRANGER_ITEM}[tag.what]
                epc = sgtin96_hex(COMPANY, item, tag.number)
            items.append(Movement(**stamp, reader="r1", door=one.door, direction=Direction(one.direction),
                                  epc=epc.lower(), first_seen=at + k, last_seen=at + k + 300,
                                  read_count=3))  # fmt: skip
        out.append((one, items))
    return out


def _scan(stamp: dict[str, Any], scanner: str, tag: Tag) -> Scan:
    if tag.what == "pallet":
        sscc = _sscc(tag.number)
        return Scan(
            **stamp, scanner=scanner, raw=f"]C100{sscc}", symbology="]C1", scheme=Scheme.GS1, sscc=sscc
        )
    item = {"vx10": VX10_ITEM, "saline": SALINE_ITEM, "stranger": STRANGER_ITEM}[tag.what]
    gtin = _gtin(item)
    lot = None
    if tag.what == "vx10" and tag.number < 1040:
        lot = "L1" if tag.number < 1020 else "L2"
    raw = f"]d201{gtin}" + (f"10{lot}\x1d" if lot else "") + f"21{tag.number}"
    return Scan(**stamp, scanner=scanner, raw=raw, symbology="]d2", scheme=Scheme.GS1, gtin=gtin, lot=lot,
                serial=str(tag.number))  # fmt: skip


def _rows(engine: Engine, site: str) -> list[tuple[Any, ...]]:
    """The site's binding rows, all but when they were written."""
    b = BindingRow.__table__.c
    columns = [c for c in b if c.name != "bound_at"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).where(b.site == site).order_by(b.seq)).all()]


def columns_index(name: str) -> int:
    """Where column ``name`` is in a row of :func:`_rows`."""
    return [c.name for c in BindingRow.__table__.c if c.name != "bound_at"].index(name)


def _reconciliations(engine: Engine, ids: list[str]) -> list[Any]:
    with engine.connect() as conn:
        return [check_document(conn, key, START.date()).reconciliation for key in ids]


def _accept_open(conn: Any, document: str, now: datetime.datetime) -> None:
    for judged in judged_discrepancies(conn, document, now.date()):
        if judged.blocking:
            accept_discrepancy(conn, document, judged.key, reason="accepted: ASN error", by=QA,
                               signer=QA_SIGNS, now=now, today=now.date())  # fmt: skip


def _assign(
    engine: Engine,
    site: str,
    gateway: str,
    pick: int,
    document: str,
    line: int | None,
    now: datetime.datetime,
) -> None:
    """The dock puts an item left unbound at a door on a document being worked, as the door page does."""
    b = BindingRow
    with engine.begin() as conn:
        if document_record(conn, document)["state"] not in ("released", "in_progress"):
            return
        query = select(b.door, b.stream, b.seq).where(b.site == site, b.how == "unbound", b.door.is_not(None))
        loose = conn.execute(query.order_by(b.seq)).all()
        if not loose:
            return
        door, stream, seq = loose[pick % len(loose)]
        fields = {"gateway": gateway, "stream": stream, "seq": seq, "document": document, "line": line}
        event("an item assigned by hand")
        assign_item(conn, site, door, fields, reason="the driver's paperwork says so", by=DOCK, now=now)


def _run(engine: Engine, scenario: Scenario, site: str, gateway: str) -> list[str]:
    """The scenario a step at a time: moves, then deliveries, then binding runs; returns the documents."""
    ids: list[str] = []
    with engine.begin() as conn:
        for n, fields in enumerate(scenario.documents):
            body = {**fields, "site": site, "reference": f"REF-{n}", "party": "Acme"}
            ids.append(str(create_document(conn, body, reason="received", by=DOCK, now=NOW)["id"]))
    deliveries = sorted(
        [(one.delivered, n) for n, (one, _) in enumerate(_items(scenario))]
        + [(one.again, n) for n, (one, _) in enumerate(_items(scenario)) if one.again is not None]
    )
    passes = _items(scenario)
    for step in range(scenario.steps):
        now = _at(step)
        with engine.begin() as conn:
            for at, doc, state, door in scenario.moves:
                if at == step:
                    if state == "completed":  # completion waits for QA to accept what is still open
                        _accept_open(conn, ids[doc], now)
                    move_document(conn, ids[doc], state, door=door, reason="dock", by=DOCK, now=now)
        for at, n in deliveries:
            if at == step:
                _, items = passes[n]
                outcome = ingest(engine, *batch_message(gateway, items, site=site), now=now)
                assert outcome.kind == "batch", outcome
        for at, limit in scenario.binds:
            if at == step:
                with engine.begin() as conn:
                    bind_pending(conn, now, limit=limit)
        for at, pick, doc, line in scenario.assigns:
            if at == step:
                _assign(engine, site, gateway, pick, ids[doc], line, now)
    with engine.begin() as conn:  # the scheduler catches up
        while bind_pending(conn, _at(scenario.steps)):
            pass
    return ids


@pytest.fixture
def catalogued(engine: Engine) -> Engine:
    _catalog(engine)
    return engine


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_bound_a_step_at_a_time_or_all_again_gives_identical_rows(
    catalogued: Engine, scenario: Scenario
) -> None:
    engine = catalogued
    site, gateway = _site(engine, next(_examples))
    ids = _run(engine, scenario, site, gateway)
    stepwise = _rows(engine, site)
    judged = _reconciliations(engine, ids)
    assert len(stepwise) == sum(len(p.tags) for p in scenario.passes)  # each item once, none twice
    hows = {row[columns_index("how")] for row in stepwise}
    for how in sorted(hows):
        event(f"an item bound by {how}")
    bound = sum(row[columns_index("document")] is not None for row in stepwise)
    event("some item bound to a document" if bound else "no item bound to a document")
    later = _at(scenario.steps) + datetime.timedelta(days=1)
    for _ in range(2):
        with engine.begin() as conn:
            assert rebind(conn, later, site=site) == len(stepwise)
        assert _rows(engine, site) == stepwise
        assert _reconciliations(engine, ids) == judged
