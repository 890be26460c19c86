"""Temperature classes: read by anyone signed in; a new version by whoever holds ``catalog.manage``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from coldgate.cloud.api.schemas_catalog import ClassBody, ClassOut
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.catalog import temperature_classes as tc

__all__ = ["router"]

router = APIRouter(prefix="/catalog/temperature-classes", tags=["catalog"])
Name = Annotated[str, Path(max_length=64)]
NOT_FOUND = {404: {"description": "No such class."}}


@router.get("", response_model=list[ClassOut])
def list_classes(request: Request, retired: Annotated[bool, Query()] = False) -> list[ClassOut]:
    """Every class in force, by name (``retired=true`` adds the retired ones)."""
    with request.app.state.engine.connect() as conn:
        return [ClassOut(**c) for c in tc.classes(conn, retired=retired)]


@router.get("/{name}", response_model=ClassOut, responses=NOT_FOUND)
def get_class(name: Name, request: Request) -> ClassOut:
    with request.app.state.engine.connect() as conn:
        return ClassOut(**tc.class_history(conn, name)[-1])


@router.get("/{name}/history", response_model=list[ClassOut], responses=NOT_FOUND)
def class_history(name: Name, request: Request) -> list[ClassOut]:
    """Every version, oldest first: who changed what, when and why."""
    with request.app.state.engine.connect() as conn:
        return [ClassOut(**c) for c in tc.class_history(conn, name)]


@router.put("/{name}", response_model=ClassOut, responses={409: {"description": "if_version is stale."}})
def put_class(name: Name, body: ClassBody, request: Request) -> ClassOut:
    """Make the class or add its next version; checked as a gateway checks it, audited."""
    with writing(request) as conn:
        made = tc.put_class(
            conn, name, body.spec, description=body.description, reason=body.reason, retired=body.retired,
            if_version=body.if_version, by=acting(request), now=utc_now(),
        )  # fmt: skip
    catalog_changed(request)
    return ClassOut(**made)
