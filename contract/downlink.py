"""What the cloud sends down to one gateway.

Configuration, master data and recall lists are whole documents, retained on
the broker and cached on the gateway's disk, so the edge keeps working alone
(a fresh gateway gets them the moment it subscribes).  Each carries a
`version` that only increases; a gateway ignores a version it already has
or an older one, which makes re-delivery of retained messages harmless.
Every message names its target gateway so a message published on the wrong
topic is refused instead of obeyed.  Master data and recall lists too large
for one message come in parts (`part` of `parts`, optional fields added
2026-12-06; docs/contract.md, "Documents in parts").
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec

from coldgate.contract.errors import FieldError
from coldgate.contract.ids import (
    MAX_SEQ,
    Details,
    DocVersion,
    EpochMs,
    Gtin,
    Hibc,
    HibcUom,
    Id,
    Lot,
    MaId,
    Seq,
    Serial,
    ShortText,
    StreamId,
    Text,
    check_details,
    check_finite,
    check_gs1_key,
    doc,
)
from coldgate.contract.units import TEMPERATURE_UNITS, Unit
from coldgate.contract.version import Version

#: Most parts one down-link document may be split into (8 MiB each: far beyond any real list).
MAX_PARTS: Final = 1000

PartNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_PARTS)]


def _check_part(part: int, parts: int) -> None:
    if part > parts:
        raise FieldError("part", f"part {part} of {parts}: beyond the number of parts")


class _Msg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class ConfigUpdate(_Msg, kw_only=True):
    """The gateway's whole configuration (its TOML document as JSON).

    The contract only carries it; the gateway's config loader validates it and
    reports the outcome as an `event` item (config_applied/config_rejected).
    """

    v: Version
    gateway: Annotated[Id, doc("Target gateway; must match the topic.")]
    version: DocVersion
    issued: Annotated[EpochMs, doc("When the cloud issued this version.")]
    config: Annotated[dict[str, Any], doc("The configuration document (the gateway's TOML as JSON).")]


class TemperatureClass(_Msg, kw_only=True):
    """A storage condition such as 2-8C.  Rule: `low` <= `high`."""

    name: Annotated[Id, doc("Class name used by products, e.g. 2-8C.")]
    low: Annotated[float, doc("Lowest allowed temperature.")]
    high: Annotated[float, doc("Highest allowed temperature.")]
    unit: Annotated[Unit, doc("CEL, FAH or KEL.")] = Unit.CEL
    description: ShortText = ""
    rules: Annotated[
        dict[str, Any],
        doc(
            "The class's alarm rules as the gateway's `[[temperature_classes]]` keys (pre_alarm_margin, "
            "alarm_delay_s, hysteresis, humidity_low/high, mkt_window_s, ...), checked by the gateway "
            "like its own configuration; empty: the gateway's defaults (added 2026-12-06)."
        ),
    ] = {}

    def __post_init__(self) -> None:
        check_finite(self.low, "low")
        check_finite(self.high, "high")
        if self.unit not in TEMPERATURE_UNITS:
            raise FieldError("unit", f"{self.unit} is not a temperature unit")
        if self.low > self.high:
            raise FieldError("high", f"high {self.high} is below low {self.low}")


def _one_key(gtin: str | None, product: str | None) -> None:
    if (gtin is None) == (product is None):
        raise FieldError("gtin", "give either the gtin or the product id, not both and not neither")


class Product(_Msg, kw_only=True):
    """A product a door can recognise, by any of the identifiers its labels carry.

    Rule: a product has a `gtin` or an `id` (its key for batches and recall
    entries: the GTIN when it has one); `gtin` was required before
    2026-12-06, so an older gateway refuses a document with a product that
    has none.
    """

    gtin: Annotated[Gtin | None, doc("GTIN-14; null only for a product known by `id` alone.")] = None
    id: Annotated[
        Id | None, doc("The catalog's product id: the key of a product without a GTIN (added 2026-12-06).")
    ] = None
    name: Annotated[ShortText, doc("Product name for people.")]
    temperature_class: Annotated[Id, doc("Name of one of `temperature_classes`.")]
    hibc: Annotated[Hibc | None, doc("HIBC labeler + product code (added 2026-12-06).")] = None
    hibc_uom: Annotated[
        HibcUom | None, doc("Only this HIBC unit of measure; null: any (added 2026-12-06).")
    ] = None
    ma: Annotated[MaId | None, doc("MA device identifier (added 2026-12-06).")] = None
    tor_budget_s: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=316_224_000)] | None,
        doc("Time out of refrigeration allowed, seconds; null: the door's default (added 2026-12-06)."),
    ] = None

    def __post_init__(self) -> None:
        check_gs1_key(self.gtin, "gtin")
        if self.gtin is None and self.id is None:
            raise FieldError("gtin", "a product needs a gtin or an id")
        if self.hibc_uom is not None and self.hibc is None:
            raise FieldError("hibc_uom", "a unit of measure needs the HIBC labeler and product code")

    @property
    def key(self) -> str:
        """What batches and recall entries name this product by: its GTIN, else its id."""
        return self.gtin if self.gtin is not None else self.id  # type: ignore[return-value]


class BatchInfo(_Msg, kw_only=True):
    """One lot's expiry.  Rule: exactly one of `gtin` and `product`."""

    gtin: Annotated[Gtin | None, doc("The product's GTIN (required before 2026-12-06).")] = None
    product: Annotated[Id | None, doc("The `id` of a product without a GTIN (added 2026-12-06).")] = None
    lot: Lot
    expiry: Annotated[datetime.date, doc("Expiry date, YYYY-MM-DD.")]
    expiry_hour: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=23)] | None,
        doc("Hour of `expiry` the lot expires at, 0-23 (added 2026-12-06)."),
    ] = None

    def __post_init__(self) -> None:
        check_gs1_key(self.gtin, "gtin")
        _one_key(self.gtin, self.product)

    @property
    def key(self) -> str:
        return self.gtin if self.gtin is not None else self.product  # type: ignore[return-value]


class MasterData(_Msg, kw_only=True):
    """Products, their temperature classes, and batch expiry dates.

    Rules: class names, product keys (GTIN, else id), HIBC codes (with their
    unit of measure), MA ids and (product, lot) pairs are unique; every
    product's `temperature_class` is one of `temperature_classes`.  A large
    document comes in `parts` (see "Documents in parts"): each part holds a
    share of the three lists, and the rules hold for the parts put together
    (a product may name a class listed in another part).
    """

    v: Version
    gateway: Annotated[Id, doc("Target gateway; must match the topic.")]
    version: DocVersion
    issued: Annotated[EpochMs, doc("When the cloud issued this version.")]
    part: Annotated[PartNumber, doc("This part's number, 1..parts (added 2026-12-06).")] = 1
    parts: Annotated[PartNumber, doc("How many parts this version has (added 2026-12-06).")] = 1
    temperature_classes: list[TemperatureClass] = []
    products: list[Product] = []
    batches: Annotated[list[BatchInfo], doc("Expiry date per lot.")] = []

    def __post_init__(self) -> None:
        _check_part(self.part, self.parts)
        names: set[str] = set()
        for i, klass in enumerate(self.temperature_classes):
            if klass.name in names:
                raise FieldError(f"temperature_classes[{i}].name", f"duplicate {klass.name!r}")
            names.add(klass.name)
        keys: set[str] = set()
        labels: set[tuple[str, object]] = set()
        for i, product in enumerate(self.products):
            if product.key in keys:
                field = "gtin" if product.gtin is not None else "id"
                raise FieldError(f"products[{i}].{field}", f"duplicate {product.key}")
            keys.add(product.key)
            for field, label in (("hibc", (product.hibc, product.hibc_uom)), ("ma", product.ma)):
                value = label[0] if isinstance(label, tuple) else label
                if value is None:
                    continue
                if (field, label) in labels:
                    raise FieldError(f"products[{i}].{field}", f"duplicate {value}")
                labels.add((field, label))
            if self.parts == 1 and product.temperature_class not in names:
                raise FieldError(
                    f"products[{i}].temperature_class",
                    f"unknown temperature class {product.temperature_class!r}",
                )
        lots: set[tuple[str, str]] = set()
        for i, batch in enumerate(self.batches):
            if (batch.key, batch.lot) in lots:
                raise FieldError(f"batches[{i}].lot", f"duplicate lot {batch.lot!r} of {batch.key}")
            lots.add((batch.key, batch.lot))


class RecallStatus(StrEnum):
    RECALLED = "recalled"
    QUARANTINED = "quarantined"


class RecallEntry(_Msg, kw_only=True):
    """Units that must not leave (or must be stopped at) the dock.

    `lot` and `serial` narrow the match: no lot means every lot of the
    product.  Rule: exactly one of `gtin` and `product`.
    """

    gtin: Annotated[Gtin | None, doc("The product's GTIN (required before 2026-12-06).")] = None
    product: Annotated[Id | None, doc("The `id` of a product without a GTIN (added 2026-12-06).")] = None
    lot: Annotated[Lot | None, doc("Only this lot; null: every lot.")] = None
    serial: Annotated[Serial | None, doc("Only this unit; null: every serial.")] = None
    status: Annotated[RecallStatus, doc("recalled: must not ship; quarantined: on hold until QA decides.")]
    reference: Annotated[ShortText, doc("Recall notice or quarantine decision id.")]
    reason: Annotated[Text, doc("Why, for the people at the dock.")] = ""

    def __post_init__(self) -> None:
        check_gs1_key(self.gtin, "gtin")
        _one_key(self.gtin, self.product)

    @property
    def key(self) -> str:
        """The product key it names, as :attr:`Product.key`."""
        return self.gtin if self.gtin is not None else self.product  # type: ignore[return-value]


class RecallList(_Msg, kw_only=True):
    """The complete recall/quarantine list in force (not a delta).

    A large list comes in `parts` (see "Documents in parts"), each with a
    share of the entries; the list in force is all parts' entries in order.
    """

    v: Version
    gateway: Annotated[Id, doc("Target gateway; must match the topic.")]
    version: DocVersion
    issued: Annotated[EpochMs, doc("When the cloud issued this version.")]
    part: Annotated[PartNumber, doc("This part's number, 1..parts (added 2026-12-06).")] = 1
    parts: Annotated[PartNumber, doc("How many parts this version has (added 2026-12-06).")] = 1
    entries: Annotated[list[RecallEntry], doc("Every recalled or quarantined GTIN/lot/serial.")] = []

    def __post_init__(self) -> None:
        _check_part(self.part, self.parts)


class Ack(_Msg, kw_only=True):
    """End-to-end acknowledgement: every item with `seq` <= this is committed.

    Cumulative and sent only after the cloud's database commit; the gateway
    may delete every item up to and including `seq` from its outbox.
    """

    v: Version
    gateway: Annotated[Id, doc("Target gateway; must match the topic.")]
    stream: Annotated[StreamId, doc("The outbox stream acknowledged; other streams' acks are ignored.")]
    seq: Annotated[Seq, doc("Highest sequence number up to which all items are committed.")]
    ts: Annotated[EpochMs, doc("Cloud time of the commit.")]


class CommandAction(StrEnum):
    SILENCE_ALARM = "silence_alarm"
    ACKNOWLEDGE_ALARM = "acknowledge_alarm"
    RESEND_FROM = "resend_from"  # args: {"seq": int}
    RELOAD = "reload"
    PING = "ping"


class Command(_Msg, kw_only=True):
    """An operator's command to one gateway.

    The outcome comes back as an `event` item (command_done/command_failed)
    whose `data` holds `command_id`.  A gateway with a synchronised clock
    ignores a command past `expires`: a silence queued for hours in a broker
    session must not silence a later alarm.  Rule: `resend_from` needs an
    integer `args.seq` >= 1.
    """

    v: Version
    gateway: Annotated[Id, doc("Target gateway; must match the topic.")]
    command_id: Annotated[Id, doc("Unique per command; echoed in the outcome event.")]
    issued: Annotated[EpochMs, doc("When the user gave the command.")]
    expires: Annotated[EpochMs | None, doc("Ignore the command after this time.")] = None
    action: Annotated[CommandAction, doc("What to do; resend_from takes args.seq.")]
    by: Annotated[ShortText, doc("User who gave the command.")]
    args: Annotated[Details, doc("Arguments of the action.")] = {}

    def __post_init__(self) -> None:
        check_details(self.args, "args")
        if self.expires is not None and self.expires < self.issued:
            raise FieldError("expires", "expires is before issued")
        if self.action is CommandAction.RESEND_FROM:
            seq = self.args.get("seq")
            if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
                raise FieldError("args.seq", "resend_from needs an integer seq >= 1")
