"""Moving a document along its states: draft → released to a dock door → in progress → completed →
closed, each move the document's next version, audited in the caller's transaction.

States move only along ``model.TRANSITIONS``; a refused move names both states.  Releasing names the
dock door (a ``dock_door`` location of the document's site, in force) and opens the time in which
items at that door bind to it; back to draft clears both; closing ends that time.  Completing needs a
reason, like every change here, and no open discrepancy: each one the reconciliation finds must be
resolved at the dock or accepted with a reason by someone allowed to decide (``dock_decisions.py``),
else the move is a Conflict naming them.  Kept apart from the store (``documents.py``) because the
gate reads the reconciliation, which reads documents through the store.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.versions import check_reason, next_version
from coldgate.cloud.documents.dock_decisions import refuse_open
from coldgate.cloud.documents.documents import document, epoch_ms, header_of, last_version, write_version
from coldgate.cloud.documents.model import TRANSITIONS, DocumentState, Line
from coldgate.cloud.identity.users import UserInputError, checked_text

__all__ = ["move_document"]

#: The word each move's audit entry carries.
_ACTIONS = {
    DocumentState.RELEASED: "release", DocumentState.DRAFT: "draft", DocumentState.IN_PROGRESS: "start",
    DocumentState.COMPLETED: "complete", DocumentState.CLOSED: "close",
}  # fmt: skip


def _door(conn: Connection, site: str, door: object) -> str:
    if door is None:
        raise UserInputError("door", "releasing names the dock door the document is worked at")
    name = checked_text("door", door, max_len=64)
    place = next((x for x in locations(conn, site=site) if x["id"] == name), None)
    if place is None:
        raise UserInputError("door", f"no location {name!r} at site {site!r}")
    if place["kind"] != "dock_door":
        raise UserInputError("door", f"{name!r} at site {site!r} is a {place['kind']}, not a dock door")
    return name


def move_document(
    conn: Connection, document_id: str, state: str, *, reason: str, door: str | None = None,
    if_version: int | None = None, by: Actor, now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Move the document to ``state`` if ``model.TRANSITIONS`` allows it from where it is."""
    last = last_version(conn, document_id)
    if not isinstance(state, str) or state not in set(DocumentState):
        raise UserInputError("state", f"{state!r} is no state ({', '.join(DocumentState)})")
    target = DocumentState(state)
    current = DocumentState(last.state)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nowhere: it is final"
        raise UserInputError("state", f"a {current} document cannot become {target} (it may go: {allowed})")
    version = next_version(last.version, if_version, f"document {document_id!r}")
    if door is not None and target != DocumentState.RELEASED:
        raise UserInputError("door", "only a release names the dock door")
    why = check_reason(reason)
    before = document(conn, document_id)
    row = {**header_of(last), "state": target.value}
    if target == DocumentState.RELEASED:
        row["door"] = _door(conn, last.site, door)
        if not before["lines"]:
            raise UserInputError("lines", "a document without lines has nothing to release")
        row["opened_at"] = epoch_ms(now)
    elif target == DocumentState.DRAFT:
        row["door"], row["opened_at"] = None, None
    elif target == DocumentState.COMPLETED:
        refuse_open(conn, document_id, now)
    elif target == DocumentState.CLOSED:
        row["closed_at"] = epoch_ms(now)
    lines = [Line(**{**line, "ssccs": tuple(line["ssccs"]), "serials": tuple(line["serials"])})
             for line in before["lines"]]  # fmt: skip
    return write_version(conn, row, lines, version=version, action=_ACTIONS[target], before=before, why=why,
                         by=by, now=now)  # fmt: skip
