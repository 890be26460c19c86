"""The API's SQL for what ingest refuses: enrolments, unknown gateway ids, dead-letter budgets.

Apart from ``queries`` because these tables are about the cloud guarding
itself, not about what the gateways measured; the CLI (``coldgate cloud
unknown-gateways``, ``coldgate cloud dead-letters budgets``) reads through the
same functions, so the terminal and the API never disagree.

All three tables are small by construction (one row per enrolled gateway, at
most 1,001 unknown ids, one budget row per source), so counting the matches
for ``total`` costs nothing worth avoiding.
"""

from __future__ import annotations

import datetime
from typing import Literal

from sqlalchemy import Connection, Select, and_, case, func, or_, select

from coldgate.cloud.api import schemas
from coldgate.cloud.db.models import DeadLetterBudget, Gateway, GatewayEnrolment, UnknownGateway
from coldgate.cloud.ingest.dead_letter_budget import Budget

__all__ = ["dead_letter_budgets", "enrolments", "unknown_gateways"]


def _total(conn: Connection, query: Select[tuple[object, ...]]) -> int:
    return int(conn.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one())


def _page(query: Select[tuple[object, ...]], limit: int | None, offset: int) -> Select[tuple[object, ...]]:
    return query.offset(offset) if limit is None else query.limit(limit).offset(offset)


# ---------------------------------------------------------------- enrolments


def enrolments(
    conn: Connection,
    *,
    site: str | None = None,
    state: Literal["active", "revoked", "all"] = "all",
    limit: int | None = None,
    offset: int = 0,
) -> schemas.EnrolmentList:
    """Enrolments by site then id, like ``/gateways``, with when ingest last heard each one.

    ``last_seen`` comes from ``gateways``: an enrolment that never sent
    anything is the usual sign of a gateway whose broker login is wrong.
    """
    query = select(
        GatewayEnrolment.gateway,
        GatewayEnrolment.site,
        GatewayEnrolment.credential,
        GatewayEnrolment.enrolled_at,
        GatewayEnrolment.revoked_at,
        Gateway.last_seen,
    ).outerjoin(Gateway, Gateway.id == GatewayEnrolment.gateway)
    if site is not None:
        query = query.where(GatewayEnrolment.site == site)
    if state == "active":
        query = query.where(GatewayEnrolment.revoked_at.is_(None))
    elif state == "revoked":
        query = query.where(GatewayEnrolment.revoked_at.is_not(None))
    total = _total(conn, query)
    ordered = _page(query.order_by(GatewayEnrolment.site, GatewayEnrolment.gateway), limit, offset)
    items = [
        schemas.EnrolmentEntry(
            gateway=row.gateway,
            site=row.site,
            credential=row.credential,
            enrolled_at=schemas.utc(row.enrolled_at),
            revoked_at=schemas.utc(row.revoked_at),
            active=row.revoked_at is None,
            last_seen=schemas.utc(row.last_seen),
        )
        for row in conn.execute(ordered)
    ]
    return schemas.EnrolmentList(total=total, items=items)


# ---------------------------------------------------------------- unknown gateway ids


def unknown_gateways(
    conn: Connection, *, site: str | None = None, limit: int | None = None, offset: int = 0
) -> schemas.UnknownGatewayList:
    """Refused gateway ids, most recently heard first (ties by id, so pages do not overlap).

    A row stays after its id is enrolled (ingest keeps it as history), so
    each says whether the id is admitted now: the same test as ingest's
    ``admission`` (enrolled, not revoked, for the site its topics named).
    """
    admitted = and_(
        GatewayEnrolment.gateway == UnknownGateway.gateway,
        GatewayEnrolment.site == UnknownGateway.site,
        GatewayEnrolment.revoked_at.is_(None),
    )
    query = select(
        UnknownGateway.gateway,
        UnknownGateway.site,
        UnknownGateway.why,
        UnknownGateway.first_seen,
        UnknownGateway.last_seen,
        UnknownGateway.messages,
        UnknownGateway.payload_bytes,
        GatewayEnrolment.gateway.label("enrolled"),
    ).outerjoin(GatewayEnrolment, admitted)
    if site is not None:
        query = query.where(UnknownGateway.site == site)
    total = _total(conn, query)
    ordered = _page(query.order_by(UnknownGateway.last_seen.desc(), UnknownGateway.gateway), limit, offset)
    items = [
        schemas.UnknownGatewayEntry(
            gateway=row.gateway,
            site=row.site,
            why=row.why,
            first_seen=schemas.utc(row.first_seen),
            last_seen=schemas.utc(row.last_seen),
            messages=row.messages,
            payload_bytes=row.payload_bytes,
            enrolled_now=row.enrolled is not None,
        )
        for row in conn.execute(ordered)
    ]
    return schemas.UnknownGatewayList(total=total, items=items)


# ---------------------------------------------------------------- dead-letter budgets


def dead_letter_budgets(
    conn: Connection,
    budget: Budget,
    now: datetime.datetime,
    *,
    configured: bool = True,
    capped: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> schemas.DeadLetterBudgetList:
    """Each source's latest window as ``budget`` judges it at ``now``: capped sources first, then by name.

    The table only holds the window a source last spent in; ingest restarts
    it at that source's next dead letter once ``window_s`` has passed, so a
    window is open while ``window_start > now - window_s`` (the same test as
    ``dead_letter_budget.spend``).  Capped means the next new dead letter
    would be dropped: some already were, or every row of the window is spent.
    Judged in SQL so that the filter, the order and the flags cannot disagree.
    """
    cutoff = now - datetime.timedelta(seconds=budget.window_s)
    window_open = DeadLetterBudget.window_start > cutoff
    over = and_(window_open, or_(DeadLetterBudget.dropped > 0, DeadLetterBudget.kept >= budget.rows))
    capped_flag = case((over, 1), else_=0).label("capped")
    query = select(
        DeadLetterBudget.source,
        DeadLetterBudget.window_start,
        DeadLetterBudget.kept,
        DeadLetterBudget.kept_bytes,
        DeadLetterBudget.dropped,
        DeadLetterBudget.dropped_bytes,
        DeadLetterBudget.dropped_total,
        case((window_open, 1), else_=0).label("window_open"),
        capped_flag,
    )
    if capped is True:
        query = query.where(over)
    elif capped is False:
        query = query.where(~over)
    total = _total(conn, query)
    ordered = _page(query.order_by(capped_flag.desc(), DeadLetterBudget.source), limit, offset)
    width = datetime.timedelta(seconds=budget.window_s)
    items = []
    for row in conn.execute(ordered):
        start = schemas.utc(row.window_start)
        assert start is not None  # NOT NULL column
        items.append(
            schemas.DeadLetterBudgetEntry(
                source=row.source,
                window_start=start,
                window_end=start + width,
                window_open=bool(row.window_open),
                kept=row.kept,
                kept_bytes=row.kept_bytes,
                dropped=row.dropped,
                dropped_bytes=row.dropped_bytes,
                dropped_total=row.dropped_total,
                capped=bool(row.capped),
            )
        )
    limits = schemas.BudgetLimits(
        window_s=budget.window_s, rows=budget.rows, bytes=budget.bytes, configured=configured
    )
    return schemas.DeadLetterBudgetList(limits=limits, total=total, items=items)
