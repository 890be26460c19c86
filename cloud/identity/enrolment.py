"""Which gateways the cloud takes data from: enrol, revoke, and ingest's question "may it write?".

The broker pins every gateway to its own topics by its login; this is the
second lock, kept by the cloud itself.  A login made on the broker without
an enrolment here, a gateway revoked here while its login lingers on the
broker, or a gateway publishing under another site's topics stores nothing.

Re-enrolling a revoked gateway enrols it again (new credentials are made by
the command that calls this).  Who did it is recorded once the cloud has
people (the identity and audit issue); today the CLI runs as root on the
cloud host.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db.models import GatewayEnrolment

__all__ = ["CREDENTIALS", "RESERVED_IDS", "Admission", "admission", "enrol_gateway", "revoke_gateway"]

CREDENTIALS = ("password", "certificate")
#: Ids the API's fixed paths take (``/gateways/unknown``, ``/gateways/enrolments``): a gateway so
#: named could never be read by id.
RESERVED_IDS = frozenset({"unknown", "enrolments"})


@dataclass(frozen=True, slots=True)
class Admission:
    """Ingest's answer for one gateway on one site: ``refused`` is None when it may write."""

    gateway: str
    site: str
    refused: str | None


def admission(conn: Connection, gateway: str, site: str) -> Admission:
    """May ``gateway`` write under ``site``'s topics? If not, why, in words for the log."""
    row = conn.execute(
        select(GatewayEnrolment.site, GatewayEnrolment.revoked_at).where(GatewayEnrolment.gateway == gateway)
    ).first()
    if row is None:
        why = f"gateway {gateway} is not enrolled (coldgate cloud gateways enroll {gateway} --site {site})"
    elif row.revoked_at is not None:
        why = f"gateway {gateway} was revoked at {row.revoked_at.isoformat(timespec='seconds')}"
    elif row.site != site:
        why = f"gateway {gateway} is enrolled for site {row.site}, not {site}"
    else:
        why = None
    return Admission(gateway, site, why)


def enrol_gateway(
    conn: Connection, gateway: str, site: str, credential: str, now: datetime.datetime
) -> str | None:
    """Enrol ``gateway`` for ``site``; returns how it stood before ("enrolled", "revoked", None: new).

    Re-enrolling an enrolled gateway for another site is refused (ValueError):
    its stored data names the first site, and moving a gateway is a decision
    to take on purpose (revoke, then enrol again).
    """
    if gateway in RESERVED_IDS:
        raise ValueError(f"{gateway!r} is reserved by the API's /gateways/{gateway}; choose another id")
    if credential not in CREDENTIALS:
        raise ValueError(f"credential must be one of {', '.join(CREDENTIALS)}, not {credential!r}")
    row = conn.execute(
        select(GatewayEnrolment.site, GatewayEnrolment.revoked_at)
        .where(GatewayEnrolment.gateway == gateway)
        .with_for_update()
    ).first()
    if row is None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(GatewayEnrolment).values(
                gateway=gateway, site=site, enrolled_at=now, credential=credential, revoked_at=None
            )
        )
        return None
    if row.revoked_at is None and row.site != site:
        raise ValueError(f"{gateway} is enrolled for site {row.site}; revoke it first to enrol it for {site}")
    conn.execute(
        update(GatewayEnrolment)
        .where(GatewayEnrolment.gateway == gateway)
        .values(site=site, enrolled_at=now, credential=credential, revoked_at=None)
    )
    return "revoked" if row.revoked_at is not None else "enrolled"


def revoke_gateway(conn: Connection, gateway: str, now: datetime.datetime) -> bool:
    """Revoke ``gateway``: ingest stores nothing more from it. False if it was not enrolled."""
    done = conn.execute(
        update(GatewayEnrolment)
        .where(GatewayEnrolment.gateway == gateway, GatewayEnrolment.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(done.rowcount)
