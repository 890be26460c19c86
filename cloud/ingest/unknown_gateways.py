"""Messages from gateways the cloud does not take data from, counted per gateway id.

The first message of an id is what a person needs (logged, and kept as a
dead letter); after it, a row of counters is enough.  Ids are chosen by
whoever publishes, so the rows are capped too: past ``MAX_IDS`` ids, the
rest are counted under ``OTHERS``.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db.models import UnknownGateway

__all__ = ["MAX_IDS", "OTHERS", "note_unknown"]

MAX_IDS = 1000
OTHERS = "(others)"


def note_unknown(
    conn: Connection, gateway: str, site: str, why: str, size: int, now: datetime.datetime
) -> bool:
    """Count one message of ``gateway`` refused for ``why``; True when it is the first of its id,
    or the first since the reason changed (enrolled since, then revoked)."""
    key = UnknownGateway.gateway == gateway
    known = conn.execute(select(UnknownGateway.why).where(key).with_for_update()).first()
    if known is None:
        if conn.execute(select(func.count()).select_from(UnknownGateway)).scalar_one() >= MAX_IDS:
            gateway, site, why, key = (
                OTHERS,
                "",
                "more unknown gateway ids than are counted one by one",
                (UnknownGateway.gateway == OTHERS),
            )
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        created = conn.execute(
            insert(UnknownGateway)
            .values(
                gateway=gateway,
                site=site,
                why=why,
                first_seen=now,
                last_seen=now,
                messages=1,
                payload_bytes=size,
            )
            .on_conflict_do_nothing()
            .returning(UnknownGateway.gateway)  # rowcount is -1 here on PostgreSQL (psycopg 3)
        ).first()
        if created is not None:
            return gateway != OTHERS
    conn.execute(
        update(UnknownGateway)
        .where(key)
        .values(
            last_seen=now,
            why=why,
            messages=UnknownGateway.messages + 1,
            payload_bytes=UnknownGateway.payload_bytes + size,
        )
    )
    return known is not None and known.why != why
