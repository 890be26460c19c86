"""Keeping what ingest refuses: a dead letter, charged to its source's budget, logged sparingly."""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
import threading
import time
from typing import Any

from sqlalchemy import Connection, func, literal, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.alerts.ingest_alerts import CAPPED_RULE, raise_for_person
from coldgate.cloud.db.models import DeadLetter
from coldgate.cloud.ingest.dead_letter_budget import Budget, Spent, spend
from coldgate.cloud.ingest.dead_letter_payload import KeptPayload
from coldgate.cloud.ingest.dead_letter_payload import keep as keep_payload

__all__ = [
    "CONFLICT_REASON",
    "ITEM_REASONS",
    "NOT_ENROLLED_REASON",
    "NOT_ENROLLED_SOURCE",
    "NO_GATEWAY_SOURCE",
    "dead_letter",
]

log = logging.getLogger(__name__)


#: How the reasons of dead letters holding one item of a batch begin (salvaged, refused by the
#: database, conflicting): a replay tells them by these (cloud/ingest/replay.py).
ITEM_REASONS = ("item of batch", "item refused by the database")
CONFLICT_REASON = "conflict:"
#: How the reason of a message from a gateway the cloud does not take data from begins; never
#: replayable (an enrolled gateway re-sends its own unacknowledged items).
NOT_ENROLLED_REASON = "not enrolled:"
#: The one dead-letter budget all gateways that are not enrolled share: their ids are chosen by
#: whoever publishes, so a budget per id would be no bound.
NOT_ENROLLED_SOURCE = "(not enrolled)"
NO_GATEWAY_SOURCE = "(no gateway)"


class _DeadLetterLog:
    """A warning per dead letter, at most one per source every ``every_s``; the quiet ones are
    counted in the next line.  Shared by the worker threads of one process."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, source: str, topic: str, reason: str, kept: KeptPayload, *, dropped: bool) -> None:
        now = time.monotonic()
        with self._lock:
            last, quiet = self._last.get(source, (-math.inf, 0))
            if now - last < self.every_s:
                self._last[source] = (last, quiet + 1)
                return
            self._last[source] = (now, 0)
        more = f" ({quiet} more from {source} since the last line)" if quiet else ""
        cut = (
            ", not kept: over its budget" if dropped else f", kept {len(kept.data)}" if kept.truncated else ""
        )
        size = f"{kept.size} bytes{cut}"
        log.warning("dead letter from %s on %s: %s [%s]%s", source, topic, reason, size, more)


_log_dead_letter = _DeadLetterLog()


def dead_letter(
    conn: Connection,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    now: datetime.datetime,
    gateway: str | None = None,
    path: str | None = None,
    batch: dict[str, Any] | None = None,
    budget: Budget | None = None,
    source: str | None = None,
    kept: KeptPayload | None = None,
) -> Spent:
    """Keep a message (or one item of it) that could not be stored, with why; whether it was kept.

    ``batch`` is given for one item of a batch (``payload`` is then the item
    alone): the batch's stream, boot and range, without which the item could
    not be replayed once whatever refused it is fixed.

    The payload is kept as is when it could ever become data, else only its
    first bytes with the size and SHA-256 of the whole (``dead_letter_payload``):
    a flood of garbage must not fill the database.  The texts are made storable
    (no NUL, no lone surrogate), since the dead-letter table must take whatever
    the rest of ingest could not.  Gateways re-send what is not acknowledged, so
    the same refusal comes back again and again: it is counted in ``repeats``
    of the first row rather than stored anew, free of charge.  A new one is
    charged to ``source`` (``gateway`` unless given; ``dead_letter_budget``):
    past its budget it is only counted, and the first one dropped in a window
    is logged and, for a gateway, raised as an alert.  ``kept``: what is left
    of a payload cut before it got here (``refuse_oversized``); ``payload`` is
    then its prefix.
    """
    topic, reason = _storable(topic), _storable(reason)
    path = None if path is None else _storable(path)
    if batch is not None:
        batch = {key: _storable(value) if isinstance(value, str) else value for key, value in batch.items()}
    payload = bytes(payload)
    if kept is None:
        kept = keep_payload(payload)
        body = payload
    else:  # only a prefix is here: the whole is known by its hash
        body = kept.sha256.encode()
    digest = hashlib.sha256()
    for part in (topic.encode(), b"\x00", (path or "").encode(), b"\x00", body):
        digest.update(part)
    fingerprint = digest.hexdigest()
    source = source or gateway or NO_GATEWAY_SOURCE
    if _repeated(conn, fingerprint, batch, now):
        _log_dead_letter(source, topic, reason, kept, dropped=False)
        return Spent.KEPT
    budget = budget or Budget()
    spent = spend(conn, source, len(kept.data), now, budget)
    _log_dead_letter(source, topic, reason, kept, dropped=spent is not Spent.KEPT)
    if spent is Spent.FIRST_DROPPED:
        _report_capped(conn, source, gateway, budget, now)
    if spent is not Spent.KEPT:
        return spent
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(DeadLetter).values(
        received_at=now,
        topic=topic,
        **kept.columns(),
        reason=reason,
        gateway=gateway,
        path=path,
        fingerprint=fingerprint,
        repeats=0,
        last_received_at=now,
        # Left out when None: JSON columns would store a JSON null, which is not SQL NULL.
        **({"batch": batch} if batch is not None else {}),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[DeadLetter.fingerprint],
            set_={
                "repeats": DeadLetter.repeats + 1,
                "last_received_at": stmt.excluded.last_received_at,
                # A letter kept before its batch header was recorded gets it from the repeat.
                "batch": func.coalesce(DeadLetter.batch, stmt.excluded.batch),
            },
        )
    )
    return Spent.KEPT


def _repeated(
    conn: Connection, fingerprint: str, batch: dict[str, Any] | None, now: datetime.datetime
) -> bool:
    """Count a repeat of a dead letter already kept; False when there is none."""
    values: dict[str, Any] = {"repeats": DeadLetter.repeats + 1, "last_received_at": now}
    if batch is not None:  # a letter kept before its batch header was recorded gets it from the repeat
        values["batch"] = func.coalesce(DeadLetter.batch, literal(batch, DeadLetter.__table__.c.batch.type))
    done = conn.execute(update(DeadLetter).where(DeadLetter.fingerprint == fingerprint).values(**values))
    return bool(done.rowcount)


def _report_capped(
    conn: Connection, source: str, gateway: str | None, budget: Budget, now: datetime.datetime
) -> None:
    """The first dead letter of ``source`` dropped in a window: a log line, and an alert if a gateway's."""
    limits = f"{budget.rows} letters or {budget.bytes} bytes per {budget.window_s:.0f} s"
    log.warning(
        "dead letters from %s are over their budget (%s): counting, not keeping, the rest", source, limits
    )
    if gateway is not None and source == gateway:
        raise_for_person(
            conn,
            gateway=gateway,
            rule=CAPPED_RULE,
            key="budget",
            message=(
                f"Gateway {gateway} sent more refused messages than are kept ({limits}); the rest of "
                "this window are only counted (dead_letter_budgets). Look at its dead letters."
            ),
            details={"rows": budget.rows, "bytes": budget.bytes, "window_s": budget.window_s},
            now=now,
            quiet_s=budget.window_s,
        )


def _storable(text: str) -> str:
    """``text`` as every database stores it: lone surrogates and NUL written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
