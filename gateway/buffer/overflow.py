"""When the outbox sheds, and the records that say so (principle 5: gaps are records).

The caps decide *when* (``Caps``); ``thinning.plan`` decides *what*; this
module builds the items the outbox commits in the same transaction as the
deletion, so the cloud can never see readings vanish without being told:

- a ``gap`` (subject type ``outbox``, subject the gateway id, cause
  ``outbox_thinned``) spanning exactly the wall time of the dropped readings,
  with how many of which sensor went;
- an ``alert`` ``outbox.thinned``: ``warning`` while every interval kept its
  min and max (the envelope QA needs survives), ``critical`` once whole
  intervals or aged readings were dropped (history is really missing);
- an ``alert`` ``outbox.over_capacity`` (critical) when only items that are
  never shed are left and they alone exceed the byte cap: the cap is then
  exceeded on purpose and said so, once per episode.

Shedding goes down to ``LOW_WATER`` of the cap, not just under it, so that it
runs (and alerts) once per few megabytes of growth rather than on every
commit.  ``shed_pass`` runs on the writer thread (``committer.py``): the
deletion and the records are one transaction, so a crash leaves either the
readings or the records that say they are gone, never neither.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from coldgate.contract.codec import encode
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Gap, GapCause, Item, Severity, SubjectType
from coldgate.gateway.buffer import thinning
from coldgate.gateway.buffer.outbox_db import NewRow, OutboxDb, row_size
from coldgate.gateway.buffer.thinning import Shed
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import stamp_fields

LOW_WATER: Final = 0.9
#: Room kept below the low-water mark for the gap and alerts a shedding adds.
RECORD_RESERVE: Final = 4096
_DETAIL_CHARS: Final = 600


@dataclass(frozen=True, slots=True)
class Caps:
    max_bytes: int
    max_age_ms: int
    interval_ms: int

    def need_bytes(self, used: int) -> int:
        """Bytes to free: 0 under the cap, else down to the low-water mark with room for the records."""
        if used <= self.max_bytes:
            return 0
        return used + RECORD_RESERVE - int(self.max_bytes * LOW_WATER)

    def age_limit(self, now: Stamp) -> int | None:
        """Readings stamped before this are past the age cap; None when the clock cannot tell."""
        return now.wall_ms - self.max_age_ms if now.synced else None


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _size(n: int) -> str:
    return f"{n / 1_048_576:.1f} MiB" if n >= 1_048_576 else f"{n / 1024:.0f} KiB"


def _why(caps: Caps, shed: Shed) -> str:
    reasons = []
    if shed.thinned or shed.whole:
        reasons.append(f"over its {_size(caps.max_bytes)} cap")
    if shed.aged:
        reasons.append(f"past its {caps.max_age_ms / 86_400_000:g}-day age cap")
    return " and ".join(reasons)


def shed_records(shed: Shed, *, gap_seq: int, gateway: str, now: Stamp, caps: Caps) -> list[Item]:
    """The gap and the alert that report ``shed``; the gap will be numbered ``gap_seq``."""
    assert shed.start is not None and shed.end is not None, "nothing was shed"
    minutes = caps.interval_ms / 60_000
    how = (
        f"{shed.thinned} between the kept min and max per {minutes:g} min, "
        f"{shed.whole} with their whole interval, {shed.aged} past the age cap"
    )
    per_sensor = ", ".join(f"{subject} {count}" for subject, count in shed.by_subject.most_common())
    if len(per_sensor) > _DETAIL_CHARS:
        per_sensor = per_sensor[: _DETAIL_CHARS - 5].rsplit(", ", 1)[0] + ", ..."
    why = _why(caps, shed)
    span = f"{_iso(shed.start)} to {_iso(shed.end)}"
    gap = Gap(
        **stamp_fields(now),  # type: ignore[arg-type]
        subject_type=SubjectType.OUTBOX,
        subject=gateway,
        start=shed.start,
        end=shed.end,
        cause=GapCause.OUTBOX_THINNED,
        detail=f"outbox {why}: {len(shed)} readings shed ({how}): {per_sensor}",
    )
    alert = Alert(
        **stamp_fields(now),  # type: ignore[arg-type]
        alert_id=f"outbox-thinned-{gap_seq}",
        action=AlertAction.RAISED,
        rule="outbox.thinned",
        subject_type=SubjectType.OUTBOX,
        subject=gateway,
        severity=Severity.CRITICAL if shed.lossy else Severity.WARNING,
        message=(
            f"Outbox {why}: {len(shed)} readings from {span} shed before the cloud had them"
            + ("; whole intervals are missing" if shed.lossy else f"; min and max per {minutes:g} min kept")
        ),
        evidence=Evidence(
            start=shed.start,
            end=shed.end,
            samples=len(shed),
            details={
                "gap_seq": gap_seq,
                "readings_shed": len(shed),
                "thinned": shed.thinned,
                "whole_interval": shed.whole,
                "aged": shed.aged,
                "bytes_freed": shed.freed,
                "max_bytes": caps.max_bytes,
                "interval_s": caps.interval_ms // 1000,
            },
        ),
    )
    return [gap, alert]


def over_capacity_alert(*, seq: int, gateway: str, now: Stamp, used: int, caps: Caps) -> Alert:
    """The cap is exceeded by items that are never shed; say so instead of dropping evidence."""
    return Alert(
        **stamp_fields(now),  # type: ignore[arg-type]
        alert_id=f"outbox-full-{seq}",
        action=AlertAction.RAISED,
        rule="outbox.over_capacity",
        subject_type=SubjectType.OUTBOX,
        subject=gateway,
        severity=Severity.CRITICAL,
        message=(
            f"Outbox holds {_size(used)}, over its {_size(caps.max_bytes)} cap, in alerts, gaps, events, "
            "movements and scans that are never shed; it keeps growing until the cloud acknowledges them"
        ),
        evidence=Evidence(details={"bytes_used": used, "max_bytes": caps.max_bytes}),
    )


def shed_pass(
    db: OutboxDb,
    *,
    caps: Caps,
    now: Stamp,
    gateway: str,
    acked_seq: int,
    age_due: bool,
    over_reported: bool,
    number: Callable[[list[Item], int], list[NewRow]],
    chunk: int = thinning.DEFAULT_CHUNK,
) -> tuple[int, int, bool]:
    """Apply the caps once: (readings dropped, records written, over capacity reported)."""

    def fetch(after_seq: int, limit: int) -> list[thinning.RowMeta]:
        # Acknowledged readings are the cloud's already: never report them as shed.
        return db.routine_rows(max(after_seq, acked_seq), limit)

    shed = thinning.plan(
        fetch,
        need_bytes=caps.need_bytes(db.meta.item_bytes),
        age_limit_ts=caps.age_limit(now) if age_due else None,
        interval_ms=caps.interval_ms,
        chunk=chunk,
    )
    if not shed and (over_reported or db.meta.item_bytes <= caps.max_bytes):
        return 0, 0, over_reported and db.meta.item_bytes > caps.max_bytes
    db.reserve(3)
    reported = False
    with db.transaction():
        records: list[Item] = []
        if shed:
            db.delete_seqs(shed.seqs)
            records = shed_records(shed, gap_seq=db.meta.next_seq, gateway=gateway, now=now, caps=caps)
        used = db.meta.item_bytes + sum(row_size(encode(record)) for record in records)
        if used > caps.max_bytes and not over_reported:
            seq = db.meta.next_seq + len(records)
            records.append(over_capacity_alert(seq=seq, gateway=gateway, now=now, used=used, caps=caps))
            reported = True
        rows = number(records, db.meta.next_seq)
        if len(rows) != len(records):  # never shed without the records that say so
            raise RuntimeError("the contract refused the outbox's own shedding records; nothing was shed")
        db.insert(rows)
    return len(shed), len(records), (over_reported or reported) and db.meta.item_bytes > caps.max_bytes
