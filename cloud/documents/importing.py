"""Import of documents from a CSV or JSON file: every document of the file made as a draft, in one
transaction, or nothing.

CSV is one row per line with the document's columns repeated (what an ERP export or a spreadsheet
gives): rows with the same site, kind and reference are one document, in file order.  JSON is a list of
documents, each as ``POST /documents`` takes it.  Every row (or document) is checked first with the
same rules as the API (``checks.py``, against one read of the catalog), and every bad one is named (the
CSV's line, column and value as the catalog import names them; for JSON the document's place in the
list, from 1, and the field's path), so the sender fixes all of them at once.  A clean file is then
written through ``create_document``, each document audited as if made by hand, plus one entry for the
import itself (the file's SHA-256, the ids made, the reason).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.csv_read import ImportRefused, Problems, Row, RowError, read_rows
from coldgate.cloud.catalog.versions import check_reason
from coldgate.cloud.documents.checks import Catalog, check_header, check_line, check_lines
from coldgate.cloud.documents.documents import catalog_snapshot, create_document, reference_holder
from coldgate.cloud.identity.users import UserInputError

__all__ = ["COLUMNS", "ImportResult", "import_documents"]

KIND = "documents"
REQUIRED = ("kind", "site", "reference", "product", "quantity")
OPTIONAL = ("party", "line", "lot", "unit", "ssccs", "serials")
COLUMNS = (*REQUIRED, *OPTIONAL)
#: SSCCs and serials in one cell: separated by spaces or semicolons.
_SPLIT = re.compile(r"[;\s]+")
_INTEGER = re.compile(r"[+-]?\d{1,12}")
_LINE_FIELD = re.compile(r"lines\[(\d+)\]\.?([a-z_]*)")
#: A line field and the CSV column that carries it.
_COLUMN_OF = {"number": "line"}


@dataclass(frozen=True, slots=True)
class ImportResult:
    sha256: str
    documents: int
    lines: int
    ids: list[str] = field(default_factory=list)


def _number(cell: str | None) -> object:
    return int(cell) if cell is not None and _INTEGER.fullmatch(cell) else cell


def _listed(cell: str | None) -> list[str]:
    return [part for part in _SPLIT.split(cell or "") if part]


def _why(exc: UserInputError) -> str:
    return str(exc).removeprefix(f"{exc.field}: ")


def _csv_documents(data: bytes, problems: Problems, catalog: Catalog) -> list[tuple[int, dict[str, Any]]]:
    """The file's documents (each with its first row's line), every bad row added to ``problems``."""
    rows, shape = read_rows(KIND, data, REQUIRED, OPTIONAL)
    problems.shown.extend(shape.shown)
    problems.more += shape.more
    grouped: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        c = row.cells
        key = (c.get("site") or "", c.get("kind") or "", (c.get("reference") or "").strip())
        grouped.setdefault(key, []).append(row)
    found: list[tuple[int, dict[str, Any]]] = []
    for group in grouped.values():
        first = group[0]
        fields = {name: first.cells.get(name) for name in ("kind", "site", "reference", "party")}
        try:
            check_header(fields)
        except UserInputError as exc:
            problems.add(first.line, exc.field, first.cells.get(exc.field), _why(exc))
            continue
        bad = False
        for row in group[1:]:
            if row.cells.get("party") != fields["party"]:
                why = f"differs from line {first.line}'s {fields['party']!r} of the same document"
                problems.add(row.line, "party", row.cells.get("party"), why)
                bad = True
        lines: list[dict[str, Any]] = []
        for n, row in enumerate(group):
            c = row.cells
            line = {
                "number": _number(c.get("line")), "product": c.get("product"), "lot": c.get("lot"),
                "quantity": _number(c.get("quantity")), "unit": c.get("unit") or "case",
                "ssccs": _listed(c.get("ssccs")), "serials": _listed(c.get("serials")),
            }  # fmt: skip
            try:
                check_line(f"lines[{n}]", n, line, catalog)
            except UserInputError as exc:
                column = _column(exc.field)
                problems.add(row.line, column, c.get(column), _why(exc))
                bad = True
            lines.append(line)
        if bad:
            continue
        try:
            check_lines(lines, catalog)
        except UserInputError as exc:
            at = _LINE_FIELD.match(exc.field)
            row = group[int(at.group(1))] if at else first
            column = _column(exc.field)
            problems.add(row.line, column, row.cells.get(column), _why(exc))
            continue
        found.append((first.line, {**fields, "lines": lines}))
    return found


def _column(path: str) -> str:
    """The CSV column of a line field's path: ``lines[3].ssccs[1]`` → ``ssccs``."""
    at = _LINE_FIELD.match(path)
    name = at.group(2) if at and at.group(2) else path
    return _COLUMN_OF.get(name, name)


def _json_documents(data: bytes, problems: Problems, catalog: Catalog) -> list[tuple[int, dict[str, Any]]]:
    try:
        listed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportRefused(KIND, [RowError(0, "-", "", f"not JSON: {exc}")]) from None
    if not isinstance(listed, list) or not listed:
        raise ImportRefused(KIND, [RowError(0, "-", "", "the file is no list of documents, or an empty one")])
    found: list[tuple[int, dict[str, Any]]] = []
    for n, fields in enumerate(listed, start=1):
        if not isinstance(fields, dict):
            problems.add(n, "-", json.dumps(fields)[:200], "a document is an object (kind, site, ...)")
            continue
        try:
            check_header(fields)
            check_lines(fields.get("lines"), catalog)
        except UserInputError as exc:
            problems.add(n, exc.field, _value_at(fields, exc.field), _why(exc))
            continue
        found.append((n, fields))
    return found


def _value_at(fields: dict[str, Any], path: str) -> object:
    """The value at ``path`` (``lines[3].lot``) of a JSON document, as far as it goes."""
    value: object = fields
    for part in re.findall(r"[a-z_]+|\[\d+\]", path):
        if part.startswith("[") and isinstance(value, list) and int(part[1:-1]) < len(value):
            value = value[int(part[1:-1])]
        elif isinstance(value, dict) and not part.startswith("["):
            value = value.get(part)
        else:
            return None
    return value if not isinstance(value, (dict, list)) else json.dumps(value)[:200]


def import_documents(
    conn: Connection, data: bytes, media_type: str, *, reason: str, by: Actor, now: datetime.datetime
) -> ImportResult:
    """Make every document of the CSV (``text/csv``) or JSON (``application/json``) file ``data`` as a
    draft, in ``conn``'s transaction; or refuse the file (``ImportRefused``), nothing written."""
    why = check_reason(reason)
    catalog = catalog_snapshot(conn)
    problems = Problems()
    if media_type == "application/json":
        found = _json_documents(data, problems, catalog)
    elif media_type in ("text/csv", "text/plain", ""):
        found = _csv_documents(data, problems, catalog)
    else:
        raise UserInputError("content-type", f"{media_type!r}: send text/csv or application/json")
    seen: dict[tuple[str, str, str], int] = {}
    for line, fields in found:
        key = (fields["site"], fields["kind"], str(fields["reference"]).strip())
        holder = reference_holder(conn, *key)
        if holder is not None:
            problems.add(line, "reference", fields["reference"], f"is already document {holder}")
        elif key in seen:
            problems.add(line, "reference", fields["reference"], f"is also document {seen[key]} of the file")
        seen.setdefault(key, line)
    refused = problems.refusal(KIND)
    if refused is not None:
        raise refused
    made = [create_document(conn, fields, reason=why, by=by, now=now, catalog=catalog) for _, fields in found]
    result = ImportResult(
        hashlib.sha256(data).hexdigest(),
        len(made),
        sum(len(d["lines"]) for d in made),
        [d["id"] for d in made],
    )
    append(conn, actor=by, action="document.import", entity_type="document_import", entity_id=result.sha256,
           now=now, after=asdict(result), reason=why)  # fmt: skip
    return result
