"""Receiving notes from an EPCIS 2.0 shipping event a supplier sends (issue 15): pure, no I/O.

A supplier that publishes EPCIS tells its customer what left its dock: an ``ObjectEvent`` or an
``AggregationEvent`` with the CBV bizStep ``shipping``.  :func:`receiving_notes` turns an EPCIS 2.0
JSON / JSON-LD document (an ``EPCISDocument`` with ``epcisBody.eventList``, an ``EPCISQueryDocument``,
or one event on its own) into the fields of one receiving note per shipment, as ``create_document``
takes them.  Whole or nothing: every problem is named by its JSON path in the file, and one problem
refuses the file (:class:`EpcisRefused`).

What is mapped (CBV 2.0 words; the URN forms ``urn:epcglobal:cbv:bizstep:shipping``, ``...:btt:desadv``,
``...:sdt:owning_party`` and the web forms ``https://ref.gs1.org/cbv/BizStep-shipping`` are read as
the bare words, before the JSON Schema, which refuses the URN forms in JSON):

* **shipment → note**: the reference is the event's ``bizTransactionList`` entry of type ``desadv``
  (despatch advice, the ASN), else ``po``; a ``urn:epcglobal:cbv:bt:<GLN>:<id>`` gives its ``<id>``
  (the number printed on the paper), any other URI is kept whole (up to 64 characters).  Shipping
  events naming the same reference are one note.
* **party**: the ``sourceList`` entry of type ``owning_party``, else ``possessing_party`` (a PGLN or
  GLN URI, kept as sent), else the document's ``sender``, else none.  ``readPoint``, ``bizLocation``
  and a ``location`` source are *places* (the supplier's dock), not the party, and are not used.
* **goods**: SGTIN instances (``urn:epc:id:sgtin:...`` or a GS1 Digital Link ``.../01/<gtin>/21/<serial>``)
  → the product whose GTIN it is, one serial each, the lot from the lot's serials when the catalog knows
  it (else no lot); class-level quantities (``quantityList`` / ``childQuantityList``:
  ``urn:epc:class:lgtin:``, ``urn:epc:idpat:sgtin:<prefix>.<item>.*``, or Digital Link
  ``.../01/<gtin>/10/<lot>`` / ``.../01/<gtin>``)
  → product, lot and count (``uom`` absent, ``EA``, ``H87`` or ``C62``: a count of trade items).
  Lines are per product and lot, unit ``case`` (a trade item of the GTIN, as the documents count it);
  an EPC named twice in a shipment counts once, class quantities add up.
* **pallets**: an SSCC (``urn:epc:id:sscc:`` or ``.../00/<sscc>``) that is shipped (in ``epcList``, as an
  aggregation's ``parentID`` or a child) puts its number on the lines of the goods on it; what is on
  it comes from the document's ``AggregationEvent``s (``ADD`` or ``OBSERVE``, any bizStep: a packing
  event before the shipping one counts).  A shipped SSCC with nothing known on it is refused.

Refused, naming the path: anything the GS1 JSON Schema refuses (``gs1/EPCIS-JSON-Schema.json``, draft-07;
``format`` is not checked); a document with no shipping event; a shipping event that is no Object/
AggregationEvent, has action ``DELETE``, carries an ``errorDeclaration``, or names no ``desadv``/``po``
(or two different ones); a ``void_shipping``; an EPC no product of the catalog has (or a retired one); a
lot the catalog lacks; a quantity that is no whole count; an EPC of another scheme; a parent that is no
SSCC; parties that differ within one shipment.  Ignored: every other event (kept only as pallet
contents when an aggregation), GRAI/GIAI EPCs (returnable assets, not goods), ``readPoint``,
``bizLocation``, ``destinationList`` (Coldgate's sites carry no GLN to check it against), disposition,
sensor data, ILMD, times and extensions.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from coldgate.cloud.documents.checks import Catalog, check_header, check_lines
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.identity.users import UserInputError
from coldgate.contract.ids import gs1_check_digit_ok, gs1_key_of

__all__ = ["SCHEMA_FILE", "EpcisRefused", "Problem", "ReceivingNote", "parse_epcis", "receiving_notes"]

SCHEMA_FILE = Path(__file__).parent / "gs1" / "EPCIS-JSON-Schema.json"
MAX_SHOWN = 50
#: How deep JSON may nest: an EPCIS document is about 8 levels deep (extensions add a few); a deeper one
#: would only exhaust the schema check's recursion.
MAX_DEPTH = 64
#: UN/ECE Rec. 20 codes that count trade items (each, piece, one).
COUNT_UOMS = ("EA", "H87", "C62")
UNIT = "case"
_EVENTS = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
#: The keys whose values are CBV words, and the word family each uses in its URN and web forms.
_VOCAB = {"bizStep": ("bizstep", "BizStep"), "disposition": ("disp", "Disp")}
_TYPED = {
    "bizTransactionList": ("btt", "BTT"),
    "sourceList": ("sdt", "SDT"),
    "destinationList": ("sdt", "SDT"),
}
_BT_URN = re.compile(r"urn:epcglobal:cbv:bt:\d{13}:(.+)")
_SGTIN = re.compile(r"urn:epc:id:sgtin:(\d{6,12})\.(\d{1,7})\.(.+)")
_SSCC = re.compile(r"urn:epc:id:sscc:(\d{6,12})\.(\d{5,11})")
_LGTIN = re.compile(r"urn:epc:class:lgtin:(\d{6,12})\.(\d{1,7})\.(.+)")
_IDPAT = re.compile(r"urn:epc:idpat:sgtin:(\d{6,12})\.(\d{1,7})\.\*")
_ASSET = re.compile(r"urn:epc:id:(grai|giai):.*|https?://[^/]+(/.*)?/(8003|8004)/.*")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad thing: where (its JSON path in the file), the value there (as text, cut to 200), why."""

    path: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


class EpcisRefused(UserInputError):
    """The EPCIS document was refused, nothing made: every problem (the first ``MAX_SHOWN``)."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        count = len(problems) + more
        summary = "; ".join(str(p) for p in problems[:3]) + (" ..." if count > 3 else "")
        super().__init__("epcis", f"EPCIS document refused, nothing imported: {count} problem(s): {summary}")
        self.problems = problems
        self.more = more


@dataclass(slots=True)
class _Problems:
    shown: list[Problem] = field(default_factory=list)
    more: int = 0

    def add(self, path: str, value: object, why: str) -> None:
        if len(self.shown) < MAX_SHOWN:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            self.shown.append(Problem((path or "(document)")[:300], text[:200], why))
        else:
            self.more += 1

    def raise_any(self) -> None:
        if self.shown:
            raise EpcisRefused(self.shown, self.more)


@dataclass(frozen=True, slots=True)
class ReceivingNote:
    """A note's fields (as ``create_document`` takes them) and where its reference is in the file."""

    fields: dict[str, Any]
    reference_path: str


def parse_epcis(data: bytes) -> object:
    """The JSON of a request body, or a refusal saying why it is none."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EpcisRefused([Problem("(document)", "", f"not JSON: {exc}"[:300])]) from None


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def _too_deep(document: object) -> str | None:
    """The path of the first value nested deeper than ``MAX_DEPTH``, found without recursion."""
    stack: list[tuple[object, str, int]] = [(document, "", 0)]
    while stack:
        value, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            return at
        if isinstance(value, dict):
            stack.extend((v, _path(at, str(k)), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, _path(at, n), depth + 1) for n, v in enumerate(value))
    return None


def _path(prefix: str, *parts: str | int) -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _word(value: object, family: tuple[str, str]) -> object:
    """A CBV word from its URN or web form (``urn:epcglobal:cbv:bizstep:shipping`` → ``shipping``)."""
    if not isinstance(value, str):
        return value
    urn, web = family
    for prefix in (f"urn:epcglobal:cbv:{urn}:", f"https://ref.gs1.org/cbv/{web}-",
                   f"https://ns.gs1.org/cbv/{web}-", f"http://ns.gs1.org/cbv/{web}-"):  # fmt: skip
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return value


def _normalised_event(event: object) -> object:
    if not isinstance(event, dict):
        return event
    out = dict(event)
    for key, family in _VOCAB.items():
        if key in out:
            out[key] = _word(out[key], family)
    for key, family in _TYPED.items():
        if isinstance(out.get(key), list):
            out[key] = [{**x, "type": _word(x["type"], family)} if isinstance(x, dict) and "type" in x else x
                        for x in out[key]]  # fmt: skip
    return out


def _events(document: dict[str, Any]) -> tuple[str, list[Any]]:
    """The prefix of the event list's path and its events (a lone event: prefix "")."""
    kind = document.get("type")
    if kind == "EPCISDocument":
        body = document.get("epcisBody")
        listed = body.get("eventList") if isinstance(body, dict) else None
        return "epcisBody.eventList", listed if isinstance(listed, list) else []
    if kind == "EPCISQueryDocument":
        try:
            listed = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        except (KeyError, TypeError):
            listed = None
        return "epcisBody.queryResults.resultsBody.eventList", listed if isinstance(listed, list) else []
    return "", [document]


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    prefix, events = _events(document)
    if not prefix:
        return _normalised_event(document)  # type: ignore[return-value]
    if not events:
        return document
    out = copy.deepcopy(document)
    _, listed = _events(out)
    listed[:] = [_normalised_event(e) for e in listed]  # the copy's own list, found the same way
    return out


def _schema_problems(document: dict[str, Any], problems: _Problems) -> None:
    import jsonschema.exceptions

    errors = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        best = jsonschema.exceptions.best_match([error])
        where = ""
        for part in best.absolute_path:
            where = _path(where, part)
        problems.add(where, best.instance, f"refused by the EPCIS 2.0 JSON Schema: {best.message[:300]}")


# --- identifiers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Epc:
    kind: str  # "sgtin", "sscc", "class", "asset"
    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    sscc: str | None = None


def _gtin(prefix: str, item: str) -> str | None:
    if len(prefix) + len(item) != 13:
        return None
    return gs1_key_of(prefix, item)


def _sscc(prefix: str, reference: str) -> str | None:
    if len(prefix) + len(reference) != 17:
        return None
    return gs1_key_of(prefix, reference)


def _digital_link(text: str) -> _Epc | str:
    """A GS1 Digital Link URI (any domain): /01/<gtin>[/10/<lot>][/21/<serial>] or /00/<sscc>."""
    try:
        path = urlsplit(text).path
    except ValueError as exc:  # "http://[x/...": an unclosed IPv6 host
        return f"is no URI ({exc})"
    parts = [unquote(p) for p in path.split("/") if p]
    for i, key in enumerate(parts[:-1]):
        value = parts[i + 1]
        if key == "00":
            if not (_DIGITS.fullmatch(value) and len(value) == 18 and gs1_check_digit_ok(value)):
                return f"{value!r} is not an SSCC (18 digits with a right check digit)"
            return _Epc("sscc", sscc=value)
        if key == "01":
            if not (_DIGITS.fullmatch(value) and len(value) in (8, 12, 13, 14) and gs1_check_digit_ok(value)):
                return f"{value!r} is not a GTIN (8, 12, 13 or 14 digits with a right check digit)"
            rest = dict(zip(parts[i + 2 :: 2], parts[i + 3 :: 2], strict=False))
            gtin = value.zfill(14)
            if "21" in rest:
                return _Epc("sgtin", gtin=gtin, serial=rest["21"])
            return _Epc("class", gtin=gtin, lot=rest.get("10"))
    return "names no GTIN (/01/) or SSCC (/00/) GS1 Digital Link key"


def _epc(text: str) -> _Epc | str:
    """What an EPC or class URI names, or why it names nothing Coldgate receives."""
    if m := _SGTIN.fullmatch(text):
        gtin = _gtin(m.group(1), m.group(2))
        return _Epc("sgtin", gtin=gtin, serial=unquote(m.group(3))) if gtin else "is not a valid SGTIN"
    if m := _SSCC.fullmatch(text):
        sscc = _sscc(m.group(1), m.group(2))
        return _Epc("sscc", sscc=sscc) if sscc else "is not a valid SSCC EPC"
    if m := _LGTIN.fullmatch(text):
        gtin = _gtin(m.group(1), m.group(2))
        return _Epc("class", gtin=gtin, lot=unquote(m.group(3))) if gtin else "is not a valid LGTIN"
    if m := _IDPAT.fullmatch(text):
        gtin = _gtin(m.group(1), m.group(2))
        return _Epc("class", gtin=gtin) if gtin else "is not a valid SGTIN pattern"
    if _ASSET.fullmatch(text):
        return _Epc("asset")
    if text.startswith(("https://", "http://")):
        return _digital_link(text)
    return "is no SGTIN, SSCC or LGTIN (EPC URI or GS1 Digital Link)"


# --- shipments -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    serials: dict[str, None] = field(default_factory=dict)
    ssccs: dict[str, None] = field(default_factory=dict)
    quantity: int = 0


@dataclass(slots=True)
class _Shipment:
    reference: str
    reference_path: str
    party: str | None = None
    party_path: str = ""
    lines: dict[tuple[str, str | None], _Line] = field(default_factory=dict)
    pallets: set[str] = field(default_factory=set)
    seen: set[tuple[str, str]] = field(default_factory=set)


@dataclass(slots=True)
class _Reader:
    index: CatalogIndex
    catalog: Catalog
    problems: _Problems
    #: SSCC → what the document's aggregations put on it: (path, EPC text) and (path, quantity element).
    contents: dict[str, list[tuple[str, object, bool]]] = field(default_factory=dict)

    def product(self, path: str, text: str, gtin: str) -> str | None:
        product = self.index.gtins.get(gtin)
        if product is None:
            self.problems.add(path, text, f"{text!r} names no product of the catalog (GTIN {gtin})")
        elif self.catalog.products.get(product, True):
            self.problems.add(path, text, f"{text!r} names product {product!r}, which is retired")
            return None
        return product

    def goods(self, path: str, text: object, to: _Shipment, pallets: tuple[str, ...]) -> None:
        """One EPC of an epcList or childEPCs, shipped in ``to`` on ``pallets``."""
        if not isinstance(text, str):
            return  # the schema has named it
        found = _epc(text)
        if isinstance(found, str):
            self.problems.add(path, text, f"{text!r} {found}")
        elif found.kind == "sscc" and found.sscc is not None:
            self.pallet(path, text, found.sscc, to, pallets)
        elif found.kind == "class":
            self.problems.add(path, text, f"{text!r} is a class of goods, not one: list it in a quantityList")
        elif found.kind == "sgtin" and found.gtin is not None and found.serial is not None:
            product = self.product(path, text, found.gtin)
            if product is None:
                return
            if not 1 <= len(found.serial) <= 20:
                self.problems.add(
                    path, text, f"{text!r}: a serial of {len(found.serial)} characters (1 to 20)"
                )
                return
            lot = self.index.lot_of_serial(product, found.serial)
            line = to.lines.setdefault((product, lot), _Line())
            line.ssccs.update(dict.fromkeys(pallets))
            if (product, found.serial) not in to.seen:
                to.seen.add((product, found.serial))
                line.serials[found.serial] = None

    def pallet(self, path: str, text: str, sscc: str, to: _Shipment, pallets: tuple[str, ...]) -> None:
        if sscc in pallets or sscc in to.pallets:
            return  # shipped already (or a pallet on itself)
        inside = self.contents.get(sscc)
        if not inside:
            why = (
                f"{text!r}: SSCC {sscc} is shipped but no AggregationEvent of the document says what is on it"
            )
            self.problems.add(path, text, why)
            return
        to.pallets.add(sscc)
        for where, child, quantity in inside:
            if quantity:
                self.quantity(where, child, to, (*pallets, sscc))
            else:
                self.goods(where, child, to, (*pallets, sscc))

    def quantity(self, path: str, element: object, to: _Shipment, pallets: tuple[str, ...]) -> None:
        if not isinstance(element, dict) or not isinstance(element.get("epcClass"), str):
            return  # the schema has named it
        text = element["epcClass"]
        found = _epc(text)
        where = _path(path, "epcClass")
        if isinstance(found, str) or found.kind != "class" or found.gtin is None:
            why = found if isinstance(found, str) else "is no class of goods (LGTIN, or a GTIN pattern)"
            self.problems.add(where, text, f"{text!r} {why}")
            return
        product = self.product(where, text, found.gtin)
        uom = element.get("uom")
        count = element.get("quantity")
        if uom is not None and uom not in COUNT_UOMS:
            why = f"uom {uom!r} measures, it does not count: a line counts trade items (no uom, EA, H87, C62)"
            self.problems.add(_path(path, "uom"), uom, why)
            return
        whole = isinstance(count, int | float) and not isinstance(count, bool) and float(count).is_integer()
        if not whole or not 1 <= count <= 10_000_000:
            self.problems.add(_path(path, "quantity"), count, f"{count!r} is not a whole count from 1")
            return
        if product is None:
            return
        if found.lot is not None and (product, found.lot) not in self.catalog.lots:
            why = f"lot {found.lot!r} of product {product!r} is not in the catalog: add it first"
            self.problems.add(where, text, why)
            return
        line = to.lines.setdefault((product, found.lot), _Line())
        line.ssccs.update(dict.fromkeys(pallets))
        line.quantity += int(count)


def _reference(at: str, event: dict[str, Any], problems: _Problems) -> tuple[str, str] | None:
    listed = event.get("bizTransactionList")
    found: dict[str, list[tuple[str, str]]] = {"desadv": [], "po": []}
    for n, entry in enumerate(listed if isinstance(listed, list) else []):
        if (
            isinstance(entry, dict)
            and entry.get("type") in found
            and isinstance(entry.get("bizTransaction"), str)
        ):
            found[entry["type"]].append((_path(at, "bizTransactionList", n, "bizTransaction"),
                                         entry["bizTransaction"]))  # fmt: skip
    for kind in ("desadv", "po"):
        values = {value for _, value in found[kind]}
        if len(values) > 1:
            path, value = found[kind][1]
            problems.add(
                path, value, f"a second {kind} ({', '.join(sorted(values))}): one shipment per event"
            )
            return None
        if found[kind]:
            path, value = found[kind][0]
            m = _BT_URN.fullmatch(value)
            return (m.group(1) if m else value), path
    where = _path(at, "bizTransactionList") if listed is not None else (at or "(event)")
    why = (
        "names no despatch advice (desadv) or purchase order (po): a receiving note needs the sender's number"
    )
    problems.add(where, listed, why)
    return None


def _party(at: str, event: dict[str, Any], sender: object) -> tuple[str | None, str]:
    listed = event.get("sourceList")
    for kind in ("owning_party", "possessing_party"):
        for n, entry in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(entry, dict) and entry.get("type") == kind and isinstance(entry.get("source"), str):
                return entry["source"], _path(at, "sourceList", n, "source")
    return (sender if isinstance(sender, str) else None), "sender"


def _shipping_events(
    prefix: str, events: list[Any], problems: _Problems
) -> Iterator[tuple[str, dict[str, Any]]]:
    others: list[str] = []
    for i, event in enumerate(events):
        at = _path(prefix, i) if prefix else ""
        if not isinstance(event, dict):
            continue
        step, kind = event.get("bizStep"), event.get("type")
        if step == "void_shipping":
            problems.add(
                _path(at, "bizStep"), step, "cancels a shipment: not imported (send the corrected one)"
            )
        elif step != "shipping":
            others.append(f"{kind} bizStep {step or '(none)'} at {at or '(event)'}")
        elif kind not in ("ObjectEvent", "AggregationEvent"):
            problems.add(_path(at, "type"), kind, f"a {kind}: only ObjectEvent and AggregationEvent shipping "
                         "events are imported")  # fmt: skip
        elif event.get("action") == "DELETE":
            problems.add(_path(at, "action"), "DELETE", "a shipping event that deletes: nothing is shipped")
        elif "errorDeclaration" in event:
            problems.add(_path(at, "errorDeclaration"), event["errorDeclaration"],
                         "declares an earlier event wrong: not imported")  # fmt: skip
        else:
            yield at, event
    if not problems.shown and not any(isinstance(e, dict) and e.get("bizStep") == "shipping" for e in events):
        listed = "; ".join(others[:5]) + (" ..." if len(others) > 5 else "") if others else "no events"
        problems.add(prefix, "", f"no shipping event (an ObjectEvent or AggregationEvent with bizStep "
                     f"shipping): found {listed}")  # fmt: skip


def _contents(
    prefix: str, events: list[Any], problems: _Problems
) -> dict[str, list[tuple[str, object, bool]]]:
    found: dict[str, list[tuple[str, object, bool]]] = {}
    for i, event in enumerate(events):
        at = _path(prefix, i) if prefix else ""
        if not isinstance(event, dict) or event.get("type") != "AggregationEvent":
            continue
        if event.get("action") not in ("ADD", "OBSERVE") or not isinstance(event.get("parentID"), str):
            continue
        parent = _epc(event["parentID"])
        if isinstance(parent, str) or parent.kind != "sscc" or parent.sscc is None:
            if event.get("bizStep") == "shipping":
                why = "is no SSCC: only a pallet or shipping unit (SSCC) is read as a parent"
                problems.add(_path(at, "parentID"), event["parentID"], f"{event['parentID']!r} {why}")
            continue
        inside = found.setdefault(parent.sscc, [])
        for n, child in enumerate(event.get("childEPCs") or []):
            inside.append((_path(at, "childEPCs", n), child, False))
        for n, element in enumerate(event.get("childQuantityList") or []):
            inside.append((_path(at, "childQuantityList", n), element, True))
    return found


def receiving_notes(
    document: object, index: CatalogIndex, catalog: Catalog, *, site: str
) -> list[ReceivingNote]:
    """One receiving note's fields per shipment of ``document`` (parsed JSON), for ``site``; or
    :class:`EpcisRefused` naming every problem by its path."""
    problems = _Problems()
    if not isinstance(document, dict):
        problems.add("", document, "is no JSON object: send an EPCISDocument or one EPCIS event")
        problems.raise_any()
    assert isinstance(document, dict)
    if document.get("type") not in ("EPCISDocument", "EPCISQueryDocument", *_EVENTS):
        why = f"type {document.get('type')!r} is no EPCIS document or event (EPCISDocument, ObjectEvent, ...)"
        problems.add("type", document.get("type"), why)
        problems.raise_any()
    deep = _too_deep(document)
    if deep is not None:
        problems.add(deep, "", f"nests deeper than {MAX_DEPTH} levels: no EPCIS document does")
        problems.raise_any()
    document = _normalised(document)
    _schema_problems(document, problems)
    problems.raise_any()
    prefix, events = _events(document)
    reader = _Reader(index, catalog, problems, _contents(prefix, events, problems))
    shipments: dict[str, _Shipment] = {}
    for at, event in list(_shipping_events(prefix, events, problems)):
        found = _reference(at, event, problems)
        if found is None:
            continue
        reference, reference_path = found
        party, party_path = _party(at, event, document.get("sender"))
        to = shipments.setdefault(reference, _Shipment(reference, reference_path, party, party_path))
        if party != to.party:
            why = f"{party!r} differs from {to.party!r} ({to.party_path}) of the same shipment {reference!r}"
            problems.add(party_path, party, why)
            continue
        if event["type"] == "AggregationEvent":
            parent = event.get("parentID")
            if isinstance(parent, str):
                sscc = _epc(parent)
                if not isinstance(sscc, str) and sscc.kind == "sscc" and sscc.sscc is not None:
                    reader.pallet(_path(at, "parentID"), parent, sscc.sscc, to, ())
            else:
                for n, child in enumerate(event.get("childEPCs") or []):
                    reader.goods(_path(at, "childEPCs", n), child, to, ())
                for n, element in enumerate(event.get("childQuantityList") or []):
                    reader.quantity(_path(at, "childQuantityList", n), element, to, ())
        else:
            for n, text in enumerate(event.get("epcList") or []):
                reader.goods(_path(at, "epcList", n), text, to, ())
            for n, element in enumerate(event.get("quantityList") or []):
                reader.quantity(_path(at, "quantityList", n), element, to, ())
    problems.raise_any()
    notes = [_note(to, site, catalog, problems) for to in shipments.values()]
    problems.raise_any()
    return [note for note in notes if note is not None]


def _note(to: _Shipment, site: str, catalog: Catalog, problems: _Problems) -> ReceivingNote | None:
    lines = [
        {"product": product, "lot": lot, "quantity": len(line.serials) + line.quantity, "unit": UNIT,
         "ssccs": sorted(line.ssccs), "serials": list(line.serials)}
        for (product, lot), line in sorted(to.lines.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        if len(line.serials) + line.quantity > 0
    ]  # fmt: skip
    fields = {"kind": "receiving", "site": site, "reference": to.reference, "party": to.party, "lines": lines}
    if not lines:
        problems.add(
            to.reference_path, to.reference, f"shipment {to.reference!r} ships no goods Coldgate counts"
        )
        return None
    try:
        header = check_header(fields)
        check_lines(lines, catalog)
    except UserInputError as exc:
        path = {"reference": to.reference_path, "party": to.party_path, "site": "site"}.get(exc.field)
        value = fields.get(exc.field) if path else None
        problems.add(path or f"shipment {to.reference!r}: {exc.field}", value,
                     str(exc).removeprefix(f"{exc.field}: "))  # fmt: skip
        return None
    return ReceivingNote(
        {**fields, "reference": header["reference"], "party": header["party"]}, to.reference_path
    )
