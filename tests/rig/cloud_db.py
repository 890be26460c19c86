"""Reading and writing the cloud database the way ingest tests do: one message per transaction,
rows counted, dead letters listed."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from coldgate.cloud.db.models import DeadLetter
from coldgate.cloud.ingest.group import Outcome
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message

#: When the tests' cloud receives what they ingest, unless they say otherwise.
RECEIVED = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def ingest(
    engine: Engine,
    topic: str,
    payload: bytes,
    now: datetime.datetime = RECEIVED,
    limits: IngestLimits | None = None,
) -> Outcome:
    """One message in a transaction of its own, as a worker committing it alone would."""
    with engine.begin() as conn:
        return ingest_message(conn, topic, payload, now, limits=limits)


def count(engine: Engine, model: type, *where: Any) -> int:
    """Rows of ``model`` (matching ``where``)."""
    with engine.connect() as conn:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)
        return int(conn.execute(query).scalar_one())


def dead_letters(engine: Engine) -> list[Any]:
    """Every dead letter, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(DeadLetter).order_by(DeadLetter.id)))
