"""The down-link documents a gateway gets, built from the catalog in force: pure, no I/O.

Two documents of the contract (``contract/downlink.py``), each complete (not
a delta) and retained on the broker, so a gateway that comes back after a
week gets exactly what is in force now:

* ``MasterData``: the temperature classes, the products a door can recognise
  by GTIN, and the expiry of their lots;
* ``RecallList``: every lot that must not leave (recalled) or is on hold
  (quarantined), by GTIN and lot, with the decision it comes from.

The contract names products by GTIN only: a product known by HIBC or MA id
alone cannot be listed yet, and :class:`Built` counts what was left out so
the publisher can say so (issue 14 extends the contract).  Every list is
sorted, so the same catalog always gives the same bytes: the publisher makes
a new version only when the content (:func:`content_digest`) changes.

A document whose encoding exceeds :data:`PART_BYTES` (a recall list of a lot
of 100,000 serials is ~25 MB, the contract's cap 16 MiB) is published in
parts (:func:`split`): the same version and issue time, its entries in
order, shared out evenly; the digest stays over the whole document.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

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

__all__ = ["PART_BYTES", "Built", "build_master", "build_recalls", "content_digest", "split"]

#: A document larger than this, encoded, is published in parts of about this size (the contract's cap,
#: ``MAX_PAYLOAD_BYTES``, is twice as much: room for parts whose entries are longer than the average).
PART_BYTES: Final = 8 * 2**20

_SHORT = 200
_TEXT = 1000


@dataclass(frozen=True, slots=True)
class Built:
    """A document and what the contract could not carry (products without a GTIN, their lots)."""

    document: MasterData | RecallList
    entries: int
    left_out: int


def _short(text: str, limit: int = _SHORT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_master(
    gateway: str,
    classes: list[dict[str, Any]],
    products: list[dict[str, Any]],
    lots: list[dict[str, Any]],
    *,
    version: int,
    issued: int,
) -> Built:
    """``classes``, ``products`` and ``lots`` as ``cloud.catalog`` lists them (in force, not retired)."""
    by_gtin = {p["id"]: p["gtin"] for p in products if p["gtin"] is not None}
    document = MasterData(
        v=1, gateway=gateway, version=version, issued=issued,
        temperature_classes=[
            TemperatureClass(name=c["name"], low=c["spec"]["low"], high=c["spec"]["high"],
                             description=_short(c["description"]))
            for c in sorted(classes, key=lambda c: c["name"])
        ],
        products=[
            Product(gtin=p["gtin"], name=_short(p["name"]), temperature_class=p["temperature_class"])
            for p in sorted(products, key=lambda p: p["gtin"] or "") if p["gtin"] is not None
        ],
        batches=[
            BatchInfo(gtin=by_gtin[x["product"]], lot=x["lot"],
                      expiry=datetime.date.fromisoformat(x["expiry"]))
            for x in sorted(lots, key=lambda x: (by_gtin.get(x["product"], ""), x["lot"]))
            if x["product"] in by_gtin and x["expiry"] is not None
        ],
    )  # fmt: skip
    left_out = sum(1 for p in products if p["gtin"] is None)
    entries = len(document.temperature_classes) + len(document.products) + len(document.batches)
    return Built(document, entries, left_out)


def build_recalls(
    gateway: str,
    products: list[dict[str, Any]],
    lots: list[dict[str, Any]],
    *,
    version: int,
    issued: int,
    serials: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> Built:
    """Every recalled or quarantined lot of ``lots`` (all statuses may be passed) whose product has a GTIN.

    A lot's entry names GTIN and lot, which a scanned label carries; an RFID tag (SGTIN) carries GTIN and
    serial but no lot, so each serial the catalog ties to a held lot (``serials``, by (product, lot)) gets
    an entry of its own, without the lot, that the door matches on the serial alone.
    """
    by_gtin = {p["id"]: p["gtin"] for p in products if p["gtin"] is not None}
    held = [x for x in lots if x["status"] in (RecallStatus.RECALLED, RecallStatus.QUARANTINED)]
    entries: list[RecallEntry] = []
    for x in sorted(held, key=lambda x: (by_gtin.get(x["product"], ""), x["lot"])):
        if x["product"] not in by_gtin:
            continue
        common = {
            "gtin": by_gtin[x["product"]], "status": RecallStatus(x["status"]),
            "reference": _short(f"{x['product']}/{x['lot']} v{x['version']}"),
            "reason": _short(x["reason"], _TEXT),
        }  # fmt: skip
        entries.append(RecallEntry(lot=x["lot"], **common))
        entries.extend(
            RecallEntry(serial=s, **common) for s in sorted((serials or {}).get((x["product"], x["lot"]), ()))
        )
    document = RecallList(v=1, gateway=gateway, version=version, issued=issued, entries=entries)
    lots_listed = sum(1 for x in held if x["product"] in by_gtin)
    return Built(document, len(entries), len(held) - lots_listed)


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
