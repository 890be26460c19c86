"""Products, owned by the cloud: the identifiers their labels carry, their class, their TOR budget.

A scan or a tag names a product by GTIN (GS1), by labeler and product code
(HIBC) or by an MA IDcode product id; a product may carry any of them, and
each identifier names one product only (``product_identifiers``, unique on
every dialect, so two writers cannot both claim one).  A mistyped GTIN
would silently never match a recall, so its check digit is checked; GTIN-8,
-12 and -13 are stored as the GTIN-14 a scan decodes to.  HIBC codes and MA
ids are checked as the contract's master data carries them, so every product
stored can be published to the gateways (``cloud.downlink.documents``).
Versioned and audited like every master-data record (``versions.py``).
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.temperature_classes import check_name, classes
from coldgate.cloud.catalog.versions import check_reason, in_force, next_version, stamp, stamp_of
from coldgate.cloud.db.models import ProductIdentifier, ProductVersion
from coldgate.cloud.db.retention import CATEGORIES
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text
from coldgate.contract.ids import MA_PATTERN, PATTERN_HELP, gs1_check_digit_ok

__all__ = [
    "FIELDS", "check_product", "check_retention", "gtin14", "product", "product_history", "products",
    "put_product",
]  # fmt: skip

_table: Table = ProductVersion.__table__  # type: ignore[assignment]
_ids: Table = ProductIdentifier.__table__  # type: ignore[assignment]
_ENTITY = "product"
#: The fields a product version holds, besides its key and stamp.
FIELDS = ("name", "gtin", "hibc_lic", "hibc_pcn", "hibc_uom", "ma_id", "temperature_class", "tor_budget_s",
          "serialised", "retention")  # fmt: skip
#: HIBC: the labeler identification code is a letter then three letters or digits; the product code
#: 1-18 letters or digits (ANSI/HIBC 2.6).
_HIBC_LIC = re.compile(r"[A-Z][A-Z0-9]{3}")
_HIBC_PCN = re.compile(r"[A-Z0-9]{1,18}")
#: MA (IDcode) device identifier as the contract carries it in master data (``contract.ids.MA_PATTERN``):
#: an id the gateway would refuse could never be published, so it is refused here, where it can be fixed.
_MA_ID = re.compile(MA_PATTERN)
TEN_YEARS_S = 10 * 366 * 86_400


def gtin14(value: object, field: str = "gtin") -> str:
    """A GTIN of any GS1 length (8, 12, 13 or 14 digits, check digit right) as the GTIN-14 the catalog
    keeps; a UserInputError naming ``field`` otherwise."""
    text = checked_text(field, value, max_len=14)
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise UserInputError(field, f"{text!r} is not a GTIN (8, 12, 13 or 14 digits)")
    text = text.zfill(14)
    if not gs1_check_digit_ok(text):
        raise UserInputError(field, f"the check digit of {text} is wrong")
    return text


def _gtin(value: object) -> str | None:
    return None if value is None else gtin14(value)


def _matching(field: str, value: object, pattern: re.Pattern[str], what: str) -> str | None:
    if value is None:
        return None
    text = checked_text(field, value, max_len=64)
    if not pattern.fullmatch(text):
        raise UserInputError(field, f"{text!r} is not {what}")
    return text


def check_product(fields: dict[str, Any], class_names: set[str]) -> dict[str, Any]:
    """The product's fields, checked one by one and together; a UserInputError names the first wrong one."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise UserInputError(unknown[0], f"is not a product field (fields: {', '.join(FIELDS)})")
    name = checked_text("name", fields.get("name"), max_len=200).strip()
    if not name:
        raise UserInputError("name", "must not be empty")
    lic = _matching(
        "hibc_lic", fields.get("hibc_lic"), _HIBC_LIC, "an HIBC labeler code (a letter, 3 letters/digits)"
    )
    pcn = _matching(
        "hibc_pcn", fields.get("hibc_pcn"), _HIBC_PCN, "an HIBC product code (1-18 letters/digits)"
    )
    if (lic is None) != (pcn is None):
        raise UserInputError(
            "hibc_pcn" if pcn is None else "hibc_lic", "HIBC needs both the labeler and product code"
        )
    uom = fields.get("hibc_uom")
    if uom is not None and (isinstance(uom, bool) or not isinstance(uom, int) or not 0 <= uom <= 9):
        raise UserInputError("hibc_uom", f"{uom!r} is not an HIBC unit of measure digit (0-9)")
    if uom is not None and lic is None:
        raise UserInputError("hibc_uom", "a unit of measure needs the HIBC labeler and product code")
    gtin = _gtin(fields.get("gtin"))
    ma_id = _matching(
        "ma_id", fields.get("ma_id"), _MA_ID,
        f"{PATTERN_HELP[MA_PATTERN]} (MA. then 4 dot-separated fields of 1-16 of A-Z a-z 0-9 _ -: "
        "country, category, organisation, item)",
    )  # fmt: skip
    if gtin is None and lic is None and ma_id is None:
        raise UserInputError("gtin", "a product needs a GTIN, an HIBC code or an MA id: its labels carry one")
    temperature_class = checked_text("temperature_class", fields.get("temperature_class"), max_len=64)
    if temperature_class not in class_names:
        known = ", ".join(sorted(class_names)) or "none yet"
        raise UserInputError(
            "temperature_class", f"no temperature class {temperature_class!r} (known: {known})"
        )
    tor = fields.get("tor_budget_s")
    if tor is not None and (isinstance(tor, bool) or not isinstance(tor, int) or not 0 <= tor <= TEN_YEARS_S):
        raise UserInputError("tor_budget_s", f"{tor!r} is not a number of seconds from 0 to {TEN_YEARS_S}")
    serialised = fields.get("serialised", False)
    if not isinstance(serialised, bool):
        raise UserInputError("serialised", f"{serialised!r} is not true or false")
    return {
        "name": name, "gtin": gtin, "hibc_lic": lic, "hibc_pcn": pcn, "hibc_uom": uom, "ma_id": ma_id,
        "temperature_class": temperature_class, "tor_budget_s": tor, "serialised": serialised,
        "retention": check_retention(fields.get("retention")),
    }  # fmt: skip


def check_retention(value: object, field: str = "retention") -> str | None:
    """The product's retention category (``cloud/db/retention.py``: how long the readings of the months
    its lots were kept are kept), or None: not categorised yet, which keeps them for ever; a
    UserInputError naming ``field`` for anything else, since a category read wrongly would let those
    readings be purged too early."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in CATEGORIES:
        raise UserInputError(field, f"{value!r} is not a retention category ({', '.join(CATEGORIES)})")
    return value


def _identifiers(fields: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(scheme, value, field) of each identifier the product carries."""
    found = []
    if fields["gtin"] is not None:
        found.append(("gtin", fields["gtin"], "gtin"))
    if fields["hibc_lic"] is not None:
        uom = "" if fields["hibc_uom"] is None else str(fields["hibc_uom"])
        found.append(("hibc", f"{fields['hibc_lic']}|{fields['hibc_pcn']}|{uom}", "hibc_pcn"))
    if fields["ma_id"] is not None:
        found.append(("ma", fields["ma_id"], "ma_id"))
    return found


def _record(row: Any) -> dict[str, Any]:
    return {"id": row.id, **{name: getattr(row, name) for name in FIELDS}, **stamp_of(row)}


def products(conn: Connection, *, retired: bool = False, gtin: str | None = None) -> list[dict[str, Any]]:
    """Products in force (with the retired ones when asked; one GTIN's when given), by id."""
    query = in_force(_table, ("id",)).order_by(_table.c.id)
    if not retired:
        query = query.where(_table.c.retired.is_(False))
    if gtin is not None:
        query = query.where(_table.c.gtin == gtin)
    return [_record(row) for row in conn.execute(query)]


def product(conn: Connection, product_id: str) -> dict[str, Any]:
    """The version in force of one product; NotFound if it never existed."""
    return product_history(conn, product_id)[-1]


def product_history(conn: Connection, product_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(_table).where(_table.c.id == product_id).order_by(_table.c.version)).all()
    if not rows:
        raise NotFound("product", f"no product {product_id!r}")
    return [_record(row) for row in rows]


def put_product(
    conn: Connection,
    product_id: str,
    fields: dict[str, Any],
    *,
    reason: str,
    retired: bool = False,
    if_version: int | None = None,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Add the product's next version (its first makes it), claim its identifiers, audit; one transaction."""
    key = check_name(product_id)
    checked = check_product(fields, {c["name"] for c in classes(conn)})
    why = check_reason(reason)
    last = conn.execute(
        select(_table).where(_table.c.id == key).order_by(_table.c.version.desc()).limit(1)
    ).first()
    version = next_version(last.version if last else None, if_version, f"product {key!r}")
    if fields.get("retention") is None and last is not None:
        # A writer that does not name the category (an older client, a form without it) keeps the one in
        # force: falling back to "standard" would shorten a device's or an implant's retention unasked.
        checked["retention"] = last.retention
    conn.execute(delete(_ids).where(_ids.c.product == key))
    if not retired:  # a retired product frees its identifiers for another
        for scheme, value, field in _identifiers(checked):
            holder = conn.execute(
                select(_ids.c.product).where(_ids.c.scheme == scheme, _ids.c.value == value)
            ).scalar()
            if holder is not None:
                raise UserInputError(
                    field, f"{value.replace('|', ' ').strip()} already names product {holder!r}"
                )
            conn.execute(insert(_ids).values(scheme=scheme, value=value, product=key))
    conn.execute(insert(_table).values(id=key, **checked, **stamp(version, by=by, now=now, reason=why,
                                                                     retired=retired)))  # fmt: skip
    after = _record(conn.execute(select(_table).where(_table.c.id == key, _table.c.version == version)).one())
    append(
        conn, actor=by, action=f"{_ENTITY}.{'create' if last is None else 'update'}", entity_type=_ENTITY,
        entity_id=key, now=now, before=_record(last) if last else None, after=after, reason=why,
    )  # fmt: skip
    return after
