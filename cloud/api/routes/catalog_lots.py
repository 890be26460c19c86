"""Lots: read by anyone signed in; made and re-dated with ``catalog.manage``; each status move is a route
of its own so that the permission table says who decides it: release, quarantine and reject are QA
decisions (``qa.decide``), a recall is the recall coordinator's (``recall.run``).

A lot an open QA case holds in quarantine is released or rejected only by that case's disposition,
which two people sign (``cloud/alerts/case_flow.py``): by hand here, one person with ``qa.decide``
would undo the automatic quarantine without a signature, so these two routes refuse it (409, naming
the cases).  A recall stays open to the recall coordinator: it is stricter than the quarantine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from coldgate.cloud.alerts.case_quarantine import cases_holding
from coldgate.cloud.api.schemas_catalog import LotBody, LotMoveBody, LotOut
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.catalog import lots
from coldgate.cloud.catalog.versions import Conflict

__all__ = ["router"]

router = APIRouter(tags=["catalog"])
ProductId = Annotated[str, Path(max_length=64)]
LotNumber = Annotated[str, Path(max_length=64)]
ONE = "/catalog/products/{product}/lots/{lot}"
ANSWERS = {
    404: {"description": "No such product or lot."},
    409: {"description": "if_version is stale, or an open QA case holds the lot."},
}


@router.get("/catalog/lots", response_model=list[LotOut])
def list_lots(
    request: Request,
    product: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16, description=", ".join(lots.STATUSES))] = None,
) -> list[LotOut]:
    with request.app.state.engine.connect() as conn:
        return [LotOut(**x) for x in lots.lots(conn, product_id=product, status=status)]


@router.get(ONE, response_model=LotOut, responses=ANSWERS)
def get_lot(product: ProductId, lot: LotNumber, request: Request) -> LotOut:
    with request.app.state.engine.connect() as conn:
        return LotOut(**lots.lot(conn, product, lot))


@router.get(ONE + "/history", response_model=list[LotOut], responses=ANSWERS)
def lot_history(product: ProductId, lot: LotNumber, request: Request) -> list[LotOut]:
    with request.app.state.engine.connect() as conn:
        return [LotOut(**x) for x in lots.lot_history(conn, product, lot)]


@router.put(ONE, response_model=LotOut, responses=ANSWERS)
def put_lot(product: ProductId, lot: LotNumber, body: LotBody, request: Request) -> LotOut:
    """Make the lot (in ``status``) or add a version with new dates; its status moves by the routes below."""
    fields = body.model_dump(exclude={"reason", "if_version", "status"})
    with writing(request) as conn:
        made = lots.put_lot(
            conn, product, lot, fields, status=body.status, reason=body.reason, if_version=body.if_version,
            by=acting(request), now=utc_now(),
        )  # fmt: skip
    catalog_changed(request)
    return LotOut(**made)


#: The moves only a QA case's signed disposition makes for a lot the case holds.
CASE_DECIDES = frozenset({"released", "rejected"})


def _move(product: str, lot: str, status: str, body: LotMoveBody, request: Request) -> LotOut:
    with writing(request) as conn:
        held = cases_holding(conn, [(product, lot)]) if status in CASE_DECIDES else {}
        if held:
            cases = ", ".join(held[(product, lot)])
            raise Conflict(
                "status",
                f"lot {lot} of {product} is held by open QA case {cases}: it becomes {status} only by the "
                "case's disposition, signed by two people (POST /cases/{case_id}/moves)",
            )
        moved = lots.move_lot(
            conn, product, lot, status, reason=body.reason, if_version=body.if_version, by=acting(request),
            now=utc_now(),
        )  # fmt: skip
    catalog_changed(request)
    return LotOut(**moved)


@router.post(ONE + "/release", response_model=LotOut, responses=ANSWERS)
def release_lot(product: ProductId, lot: LotNumber, body: LotMoveBody, request: Request) -> LotOut:
    """Quarantined → released."""
    return _move(product, lot, "released", body, request)


@router.post(ONE + "/quarantine", response_model=LotOut, responses=ANSWERS)
def quarantine_lot(product: ProductId, lot: LotNumber, body: LotMoveBody, request: Request) -> LotOut:
    """Released → quarantined: gateways hold it at the door."""
    return _move(product, lot, "quarantined", body, request)


@router.post(ONE + "/reject", response_model=LotOut, responses=ANSWERS)
def reject_lot(product: ProductId, lot: LotNumber, body: LotMoveBody, request: Request) -> LotOut:
    """Quarantined → rejected (final)."""
    return _move(product, lot, "rejected", body, request)


@router.post(ONE + "/recall", response_model=LotOut, responses=ANSWERS)
def recall_lot(product: ProductId, lot: LotNumber, body: LotMoveBody, request: Request) -> LotOut:
    """Released or quarantined → recalled (final)."""
    return _move(product, lot, "recalled", body, request)
