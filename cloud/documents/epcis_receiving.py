"""The database edge of the EPCIS import (``epcis_import.py``): one read of the catalog, the references
checked against the documents already made, every note written through ``create_document`` (audited as
if made by hand) plus one entry for the import itself (the file's SHA-256, the ids made, the reason), in
the caller's transaction; or a refusal naming every problem by its path, nothing written."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import asdict, dataclass, field

from sqlalchemy import Connection

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.versions import check_reason
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.documents import catalog_snapshot, create_document, reference_holder
from coldgate.cloud.documents.epcis_import import EpcisRefused, Problem, parse_epcis, receiving_notes

__all__ = ["EpcisImportResult", "import_epcis"]


@dataclass(frozen=True, slots=True)
class EpcisImportResult:
    sha256: str
    documents: int
    lines: int
    ids: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


def import_epcis(
    conn: Connection, data: bytes, *, site: str, reason: str | None, by: Actor, now: datetime.datetime
) -> EpcisImportResult:
    """Every shipment of the EPCIS document ``data`` made a draft receiving note of ``site``; the reason
    is ``reason`` or "EPCIS shipping event from <party>".  ``EpcisRefused`` (nothing written) otherwise."""
    given = check_reason(reason) if reason is not None else None
    parsed = parse_epcis(data)
    catalog = catalog_snapshot(conn)
    notes = receiving_notes(parsed, catalog_index(conn, site), catalog, site=site)
    taken = [
        Problem(
            note.reference_path, note.fields["reference"], f"is already document {holder} of site {site!r}"
        )
        for note in notes
        if (holder := reference_holder(conn, site, "receiving", note.fields["reference"])) is not None
    ]
    if taken:
        raise EpcisRefused(taken)
    made = []
    for note in notes:
        why = given or f"EPCIS shipping event from {note.fields['party'] or 'an unnamed supplier'}"
        made.append(create_document(conn, note.fields, reason=why, by=by, now=now, catalog=catalog))
    result = EpcisImportResult(
        hashlib.sha256(data).hexdigest(),
        len(made),
        sum(len(d["lines"]) for d in made),
        [d["id"] for d in made],
        [d["reference"] for d in made],
    )
    append(conn, actor=by, action="document.import", entity_type="epcis_import", entity_id=result.sha256,
           now=now, after=asdict(result), reason=given or "EPCIS shipping event")  # fmt: skip
    return result
