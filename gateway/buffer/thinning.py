"""The overflow policy: which routine readings to shed when the outbox is too full or too old.

Pure: it sees row metadata (seq, sensor/quantity, time, size, value) through a
``fetch(after_seq, limit)`` function, never SQL, so the policy is tested on its
own and the outbox applies the decision in one transaction with the gap
record and the alert that report it (``overflow.py``).

Why this order:

- Only readings (lane 1) ever reach this module.  Alerts, gaps, events,
  movements and scans are one-off records that QA signs off on; they are never
  shed, even past the caps (the outbox then reports that it is over capacity).
- Oldest first: the newest readings are the ones someone may still act on,
  and old excursions are already summarised by their alert's evidence (peak,
  min, max, mean, MKT).
- First, thin: per sensor and quantity and per interval (10 min by default)
  keep the lowest and the highest reading and drop the ones in between.  The
  envelope an auditor needs to see that a cold room stayed in range survives;
  an interval that was already thinned yields nothing more.
- Only when thinning every interval is not enough are whole intervals
  dropped (all sensors' readings of that interval), oldest first.
- Age cap: a reading that entered the outbox more than ``max_age`` ago is
  dropped whole: an age cap that keeps old readings is no cap.  Age is judged
  by entry order, not by each row's wall time, because a Pi without a
  real-time clock stamps readings with a wrong time until NTP syncs: every
  row that entered before the newest *synchronised* reading older than the
  limit is older still, whatever its own ``ts`` says.

The rows are read in chunks so that a 512 MiB outbox (two million readings)
never has to be held in memory; a chunk boundary that cuts an interval only
keeps a few more rows (each part keeps its own min and max), never fewer.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

DEFAULT_INTERVAL_MS: Final = 600_000
DEFAULT_CHUNK: Final = 20_000


class RowMeta(NamedTuple):
    """One stored reading as thinning sees it."""

    seq: int
    subject: str  # sensor/quantity
    ts: int
    synced: bool
    size: int
    value: float | None


#: ``fetch(after_seq, limit)``: up to ``limit`` routine rows with seq > after_seq, oldest first.
Fetch = Callable[[int, int], Sequence[RowMeta]]


@dataclass
class Shed:
    """The decision: which readings go, and the facts the gap record and the alert report."""

    seqs: list[int] = field(default_factory=list)
    freed: int = 0
    start: int | None = None  # ts of the earliest dropped reading
    end: int | None = None  # ts of the latest dropped reading
    by_subject: Counter[str] = field(default_factory=Counter)
    thinned: int = 0  # dropped between an interval's kept min and max
    whole: int = 0  # dropped with their whole interval
    aged: int = 0  # dropped for being past the age cap
    _dropped: set[int] = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def lossy(self) -> bool:
        """True when some interval lost every reading, not just the points between min and max."""
        return self.whole > 0 or self.aged > 0

    def has(self, seq: int) -> bool:
        return seq in self._dropped

    def take(self, row: RowMeta, how: str) -> None:
        self.seqs.append(row.seq)
        self._dropped.add(row.seq)
        self.freed += row.size
        self.start = row.ts if self.start is None else min(self.start, row.ts)
        self.end = row.ts if self.end is None else max(self.end, row.ts)
        self.by_subject[row.subject] += 1
        setattr(self, how, getattr(self, how) + 1)


def from_rows(rows: Sequence[RowMeta]) -> Fetch:
    """A ``Fetch`` over rows held in memory (sorted by seq), for tests and small callers."""
    ordered = sorted(rows, key=lambda row: row.seq)
    seqs = [row.seq for row in ordered]

    def fetch(after_seq: int, limit: int) -> Sequence[RowMeta]:
        start = bisect.bisect_right(seqs, after_seq)
        return ordered[start : start + limit]

    return fetch


def extremes(group: Sequence[RowMeta]) -> set[int]:
    """Seqs of the first lowest and the first highest reading; the first row if none has a value."""
    valued = [row for row in group if row.value is not None]
    if not valued:
        return {group[0].seq}
    low = min(valued, key=lambda row: row.value)  # type: ignore[arg-type,return-value]
    high = max(valued, key=lambda row: row.value)  # type: ignore[arg-type,return-value]
    return {low.seq, high.seq}


def _groups(rows: Sequence[RowMeta], key: Callable[[RowMeta], object]) -> list[list[RowMeta]]:
    """Rows grouped by ``key``, groups ordered by their oldest row (dicts keep insertion order)."""
    groups: dict[object, list[RowMeta]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return list(groups.values())


def aged_out(rows: Sequence[RowMeta], limit_ts: int) -> list[RowMeta]:
    """Rows that entered no later than the newest synchronised row stamped before ``limit_ts``."""
    cutoff = max((row.seq for row in rows if row.synced and row.ts < limit_ts), default=None)
    return [] if cutoff is None else [row for row in rows if row.seq <= cutoff]


def _chunks(fetch: Fetch, shed: Shed, chunk: int) -> Iterator[list[RowMeta]]:
    """Every routine row not yet dropped, chunk by chunk, oldest first."""
    after = 0
    while rows := fetch(after, chunk):
        after = rows[-1].seq
        yield [row for row in rows if not shed.has(row.seq)]


def plan(
    fetch: Fetch,
    *,
    need_bytes: int,
    age_limit_ts: int | None = None,
    interval_ms: int = DEFAULT_INTERVAL_MS,
    chunk: int = DEFAULT_CHUNK,
) -> Shed:
    """Choose readings to drop: past ``age_limit_ts``, then until ``need_bytes`` are freed.

    ``need_bytes <= 0`` applies only the age cap; ``age_limit_ts=None`` (the
    clock is not synchronised, so age cannot be judged) only the byte cap.
    """
    if interval_ms <= 0 or chunk <= 0:
        raise ValueError("interval_ms and chunk must be positive")
    shed = Shed()
    if age_limit_ts is not None:
        for rows in _chunks(fetch, shed, chunk):
            old = aged_out(rows, age_limit_ts)
            for row in old:
                shed.take(row, "aged")
            if not old or old[-1].seq != rows[-1].seq:
                break  # this chunk holds the first young row: every later one is younger
    if shed.freed >= need_bytes:
        return shed
    # Thin every interval to its min and max, oldest first, before dropping any interval whole.
    for rows in _chunks(fetch, shed, chunk):
        for group in _groups(rows, lambda row: (row.subject, row.ts // interval_ms)):
            if shed.freed >= need_bytes:
                return shed
            keep = extremes(group)
            for row in group:
                if row.seq not in keep:
                    shed.take(row, "thinned")
    for rows in _chunks(fetch, shed, chunk):
        for group in _groups(rows, lambda row: row.ts // interval_ms):
            if shed.freed >= need_bytes:
                return shed
            for row in group:
                shed.take(row, "whole")
    return shed
