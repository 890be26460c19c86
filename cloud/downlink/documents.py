"""The down-link documents a gateway gets, built from the catalog in force: pure, no I/O.

Two documents of the contract (``contract/downlink.py``), each complete (not
a delta) and retained on the broker, so a gateway that comes back after a
week gets exactly what is in force now:

* ``MasterData``: the temperature classes with their alarm rules, every
  product with the identifiers its labels carry (GTIN, HIBC, MA) and its TOR
  budget, and the expiry of their lots;
* ``RecallList``: every lot that must not leave (recalled) or is on hold
  (quarantined), and each serial the catalog ties to such a lot, with the
  decision it comes from.

A product with a GTIN is keyed by it; one known by HIBC or MA alone by its
catalog id (``id``, and ``product`` in its lots and recall entries: fields
added 2026-12-06).  An older gateway refuses a document that uses an added
field, so one is written only where it carries something: a catalog of GTIN
products without HIBC, MA or TOR budget, and classes at the gateway's
defaults, gives the bytes it gave before.

The contract checks its values only when a message is decoded, at the
gateway, which then refuses the whole document; so whatever this module puts
in a document is checked here first.  A catalog value the contract cannot
carry (an MA id stored before the catalog checked it, a product whose class
is not in force, a recalled lot of a retired product) is left out, not
crashed on: :class:`Built` counts it and says why, and the rest is published.

Every list is sorted (products with a GTIN first, by GTIN, then the others by
id), so the same catalog always gives the same bytes: the publisher makes a
new version only when the content (:func:`content_digest`) changes.

A document whose encoding exceeds :data:`PART_BYTES` (a recall list of a lot
of 100,000 serials is ~25 MB, the contract's cap 16 MiB) is published in
parts (:func:`split`): the same version and issue time, its entries in
order, shared out evenly; the digest stays over the whole document.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec

from coldgate.contract.codec import MAX_PAYLOAD_BYTES, encode
from coldgate.contract.downlink import (
    MAX_PARTS,
    BatchInfo,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    RecallStatus,
    TemperatureClass,
)
from coldgate.contract.ids import HIBC_PATTERN, ID_PATTERN, MA_PATTERN
from coldgate.gateway.config import TemperatureClass as GatewayClass

__all__ = ["PART_BYTES", "Built", "build_master", "build_recalls", "content_digest", "split"]

#: A document larger than this, encoded, is published in parts of about this size (the contract's cap,
#: ``MAX_PAYLOAD_BYTES``, is twice as much: room for parts whose entries are longer than the average).
PART_BYTES: Final = 8 * 2**20

_SHORT = 200
_S = TypeVar("_S", bound=msgspec.Struct)
_TEXT = 1000
_ID: Final = re.compile(ID_PATTERN)
_HIBC: Final = re.compile(HIBC_PATTERN)
_MA: Final = re.compile(MA_PATTERN)
#: The contract's bound of ``Product.tor_budget_s`` (ten years, as the catalog's).
_TOR_MAX: Final = 316_224_000
#: What ``TemperatureClass`` carries in fields of its own, not in ``rules``.
_OWN_FIELDS: Final = frozenset({"name", "low", "high", "unit", "description"})
#: The gateway's ``[[temperature_classes]]`` keys and their defaults (required keys have none).
_RULE_DEFAULTS: Final = {
    f.name: f.default for f in msgspec.structs.fields(GatewayClass) if f.name not in _OWN_FIELDS
}


@dataclass(frozen=True, slots=True)
class Built:
    """A document and what of the catalog it could not carry: ``left_out`` things, ``why`` one line each
    (for the publisher's log; nothing is left out of a catalog the catalog's own checks wrote)."""

    document: MasterData | RecallList
    entries: int
    left_out: int = 0
    why: tuple[str, ...] = ()


def _short(text: str, limit: int = _SHORT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rules(name: str, spec: Mapping[str, Any], why: list[str]) -> dict[str, Any]:
    """The class's alarm rules that differ from the gateway's defaults, by key.

    The catalog stores the spec with every default filled in; sending those too would put ``rules`` on
    every class, and an older gateway refuses the whole document for it, for nothing: a gateway fills in
    the same defaults (the catalog checked the spec with the gateway's own code).  A key the gateway does
    not know (a spec stored by an older cloud) would make it refuse the document: it is left out.
    """
    rules: dict[str, Any] = {}
    for key in sorted(spec):
        if key in _OWN_FIELDS:
            continue
        if key not in _RULE_DEFAULTS:
            why.append(f"temperature class {name!r}: rule {key!r} is not a gateway class key; left out")
            continue
        default = _RULE_DEFAULTS[key]
        value = spec[key]
        if value is None or (default is not msgspec.NODEFAULT and value == default):
            continue
        rules[key] = value
    return rules


def _checked(value: _S) -> _S:
    """``value``, after the gateway's decoder took its encoding: a ``msgspec.ValidationError`` (or the
    contract's ``FieldError``, a ValueError) where it would refuse it."""
    msgspec.json.decode(msgspec.json.encode(value), type=type(value))
    return value


def _class(record: Mapping[str, Any], why: list[str]) -> TemperatureClass | None:
    name, spec = record["name"], record["spec"]
    try:
        return _checked(
            TemperatureClass(name=name, low=spec["low"], high=spec["high"],
                             description=_short(record["description"]), rules=_rules(name, spec, why))
        )  # fmt: skip
    except (msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
        why.append(f"temperature class {name!r}: {exc}; left out, and its products with it")
        return None


def _product_key(p: Mapping[str, Any]) -> tuple[str, str]:
    """(field, value) that batches and recall entries name the product by: its GTIN, else its id."""
    return ("gtin", p["gtin"]) if p["gtin"] is not None else ("product", p["id"])


def _order(p: Mapping[str, Any]) -> tuple[bool, str]:
    """Products with a GTIN first, by GTIN (the order before ids existed), then the others by id."""
    return (p["gtin"] is None, p["gtin"] if p["gtin"] is not None else p["id"])


def _lot_order(keys: Mapping[str, tuple[str, str]], x: Mapping[str, Any]) -> tuple[bool, str, str]:
    """Lots of GTIN products first, by GTIN and lot (as before ids existed), then the others by id."""
    field, key = keys.get(x["product"], ("product", ""))
    return (field != "gtin", key, x["lot"])


def _label(
    ident: str, scheme: str, value: str, ok: bool, labels: set[tuple[str, str]], why: list[str]
) -> bool:
    """Whether a product's HIBC or MA label can be published: one the gateway accepts, naming no other
    product (the contract wants them unique; the catalog's ``product_identifiers`` keeps them so)."""
    if not ok:
        why.append(f"product {ident!r}: {scheme} {value!r} is not one the contract carries; "
                   "published without it")  # fmt: skip
        return False
    if (scheme, value) in labels:
        why.append(f"product {ident!r}: {scheme} {value!r} also names another product; published without it")
        return False
    labels.add((scheme, value))
    return True


def _product(
    p: Mapping[str, Any], class_names: set[str], labels: set[tuple[str, str]], why: list[str]
) -> Product | None:
    """``p`` as the contract carries it, its identifiers checked as the gateway will; None: left out.

    A label the contract cannot carry is dropped and the product published without it (by its other
    identifiers, or by id alone: its lots and recalls still reach the gateway)."""
    ident, gtin = p["id"], p["gtin"]
    if p["temperature_class"] not in class_names:
        why.append(f"product {ident!r}: its temperature class {p['temperature_class']!r} is not published; "
                   "left out with its lots")  # fmt: skip
        return None
    hibc = uom = None
    if p.get("hibc_lic") is not None:
        code, unit = f"{p['hibc_lic']}{p['hibc_pcn']}", p.get("hibc_uom")
        fits = _HIBC.search(code) is not None and (unit is None or 0 <= unit <= 9)
        shown = code if unit is None else f"{code}/{unit}"
        if _label(ident, "HIBC", shown, fits, labels, why):
            hibc, uom = code, unit
    ma = p.get("ma_id")
    if ma is not None and not _label(ident, "MA id", ma, _MA.search(ma) is not None, labels, why):
        ma = None
    tor = p.get("tor_budget_s")
    if tor is not None and not 0 <= tor <= _TOR_MAX:
        why.append(f"product {ident!r}: TOR budget {tor} s is beyond the contract's; published without it")
        tor = None
    try:
        return _checked(
            Product(gtin=gtin, id=ident if gtin is None else None, name=_short(p["name"]),
                    temperature_class=p["temperature_class"], hibc=hibc, hibc_uom=uom, ma=ma,
                    tor_budget_s=tor)
        )  # fmt: skip
    except (msgspec.ValidationError, ValueError) as exc:
        why.append(f"product {ident!r}: {exc}; left out with its lots")
        return None


def build_master(
    gateway: str,
    classes: list[dict[str, Any]],
    products: list[dict[str, Any]],
    lots: list[dict[str, Any]],
    *,
    version: int,
    issued: int,
) -> Built:
    """``classes``, ``products`` and ``lots`` as ``cloud.catalog`` lists them (in force, not retired).

    Lots of a product not in ``products`` (a retired one) are not the master data's business and lots
    without an expiry have nothing to say: neither counts as left out.
    """
    why: list[str] = []
    temperature_classes = [
        made for c in sorted(classes, key=lambda c: c["name"]) if (made := _class(c, why)) is not None
    ]
    class_names = {c.name for c in temperature_classes}
    listed: list[Product] = []
    keys: dict[str, tuple[str, str]] = {}  # catalog id -> (field, key) of each published product
    taken: set[str] = set()
    dropped: set[str] = set()
    labels: set[tuple[str, str]] = set()
    for p in sorted(products, key=_order):
        field, key = _product_key(p)
        if key in taken:
            why.append(f"product {p['id']!r}: {key} also names another product; left out with its lots")
            made = None
        else:
            made = _product(p, class_names, labels, why)
        if made is None:
            dropped.add(p["id"])
            continue
        keys[p["id"]] = (field, key)
        taken.add(key)
        listed.append(made)
    batches: list[BatchInfo] = []
    lots_dropped = 0
    for x in sorted(lots, key=lambda x: _lot_order(keys, x)):
        if x["expiry"] is None:
            continue
        if x["product"] not in keys:
            lots_dropped += x["product"] in dropped
            continue
        field, key = keys[x["product"]]
        expiry = datetime.date.fromisoformat(x["expiry"])
        batches.append(
            BatchInfo(**{field: key}, lot=x["lot"], expiry=expiry, expiry_hour=x.get("expiry_hour"))
        )
    document = MasterData(
        v=1, gateway=gateway, version=version, issued=issued,
        temperature_classes=temperature_classes, products=listed, batches=batches,
    )  # fmt: skip
    entries = len(document.temperature_classes) + len(document.products) + len(document.batches)
    return Built(document, entries, len(why) + lots_dropped, tuple(why))


def build_recalls(
    gateway: str,
    products: list[dict[str, Any]],
    lots: list[dict[str, Any]],
    *,
    version: int,
    issued: int,
    serials: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> Built:
    """Every recalled or quarantined lot of ``lots`` (all statuses may be passed), named by its product's
    GTIN, else by the product's id.

    A lot's entry names product and lot, which a scanned label carries; an RFID tag (SGTIN) carries GTIN
    and serial but no lot, so each serial the catalog ties to a held lot (``serials``, by (product, lot))
    gets an entry of its own, without the lot, that the door matches on the serial alone.  ``products``
    should hold the retired ones too (``due_documents`` passes them): a recalled lot of a retired
    product must still be stopped.  A held lot of a product not in ``products`` cannot be named, its
    GTIN unknown here: it is left out and said so.
    """
    keys: dict[str, tuple[str, str]] = {}
    for p in products:
        field, key = _product_key(p)
        if field == "gtin" or _ID.search(key):
            keys[p["id"]] = (field, key)
    held = [x for x in lots if x["status"] in (RecallStatus.RECALLED, RecallStatus.QUARANTINED)]
    entries: list[RecallEntry] = []
    why: list[str] = []
    for x in sorted(held, key=lambda x: _lot_order(keys, x)):
        if x["product"] not in keys:
            why.append(f"lot {x['product']}/{x['lot']} ({x['status']}): its product is unknown, or has no "
                       "GTIN and an id the contract cannot carry; left out")  # fmt: skip
            continue
        field, key = keys[x["product"]]
        common = {
            field: key, "status": RecallStatus(x["status"]),
            "reference": _short(f"{x['product']}/{x['lot']} v{x['version']}"),
            "reason": _short(x["reason"], _TEXT),
        }  # fmt: skip
        entries.append(RecallEntry(lot=x["lot"], **common))
        entries.extend(
            RecallEntry(serial=s, **common) for s in sorted((serials or {}).get((x["product"], x["lot"]), ()))
        )
    document = RecallList(v=1, gateway=gateway, version=version, issued=issued, entries=entries)
    return Built(document, len(entries), len(why), tuple(why))


def content_digest(document: MasterData | RecallList) -> str:
    """SHA-256 of the document without its version and issue time: equal content, equal digest."""
    plain = msgspec.structs.replace(document, version=1, issued=0)
    return hashlib.sha256(encode(plain)).hexdigest()


def _lists(document: MasterData | RecallList) -> tuple[str, ...]:
    return (
        ("temperature_classes", "products", "batches") if isinstance(document, MasterData) else ("entries",)
    )


def split(
    document: MasterData | RecallList, whole: bytes | None = None, limit: int = PART_BYTES
) -> list[bytes]:
    """The payloads to publish for ``document`` (``whole``: its encoding, if already made): itself when it
    fits in ``limit`` bytes, else parts 1..n of about ``limit`` bytes each.

    The entries (for master data: the classes, then the products, then the batches) are shared out in
    order, in n runs of equal count, n = ceil(size / limit); should one part still exceed the contract's
    cap, n grows.  Deterministic: the same document always gives the same parts.
    """
    whole = encode(document) if whole is None else whole
    if len(whole) <= limit:
        return [whole]
    fields = _lists(document)
    entries = [(name, entry) for name in fields for entry in getattr(document, name)]
    count = min(max(2, -(-len(whole) // limit)), len(entries), MAX_PARTS)
    while True:
        payloads = []
        for k in range(count):
            run = entries[k * len(entries) // count : (k + 1) * len(entries) // count]
            share: dict[str, list[Any]] = {name: [] for name in fields}
            for name, entry in run:
                share[name].append(entry)
            part = msgspec.structs.replace(document, part=k + 1, parts=count, **share)
            payloads.append(encode(part))
        if max(map(len, payloads)) <= MAX_PAYLOAD_BYTES or count >= min(len(entries), MAX_PARTS):
            return payloads  # at the limit of what can be split, a part too large is refused at the gateway
        count += 1
