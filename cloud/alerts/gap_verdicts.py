"""What a closed "gateway unheard" gap turned out to be: delayed data, or an interruption of monitoring.

The cloud opens a ``gateway_offline`` gap whenever it stops hearing a
gateway (``gateway_unheard``), because at that moment QA cannot see the
rooms.  But a gateway cut off from the broker keeps polling and buffering;
when the link returns it delivers the backlog and nothing is missing.  An
auditor reading a critical gap then sees lost monitoring where there was
none (found by a review: a 61 s broker outage, every reading delivered,
left a 69 s critical gap).  The gap is a record and stays; this module
judges, once, what it was, and the verdict is a *new* record that refers to
it (``gap_verdicts``), never an edit.

The evidence is what the gateway itself later reported:

* **delayed, nothing missing** when the gateway process ran through the
  whole gap (a status from after the gap whose ``ts - uptime_s`` is before
  the gap began: one process, never restarted) and the stream is stored
  without a hole up to an item stamped after the gap ended (the item at the
  stream's covered seq, of that same boot, has ``ts >= end``);
* **not monitored** when the process started while the gap was open (it was
  restarted or the host rebooted: the gateway's own restart gap says for how
  long);
* no verdict while the backlog is still arriving, and none at all without a
  status that can tell (an older gateway without ``uptime_s``, or one that
  restarted again after the gap ended before the cloud judged): the gap then
  stands as it is, which is the cautious reading.

Pure: the watch (``gap_verdicts_watch``) reads the rows and writes the
verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DELAYED", "NOT_MONITORED", "ClosedGap", "GatewayEvidence", "Verdict", "judge"]

DELAYED = "delayed"
NOT_MONITORED = "not_monitored"


@dataclass(frozen=True, slots=True)
class ClosedGap:
    gateway: str
    #: The gap's key among the cloud's gaps of this gateway (a gap's start is unique per gateway).
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class GatewayEvidence:
    """What the cloud holds from the gateway now."""

    #: The newest status: its time, boot and process uptime (None where the gateway did not say).
    status_ts: int | None
    status_boot: str | None
    uptime_s: int | None
    #: The stream the gateway writes now and how far it is stored without a hole.
    stream: str | None
    covered: int | None
    #: The time of the item at ``covered``.
    covered_ts: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: Literal["delayed", "not_monitored"]
    detail: str
    evidence: dict[str, Any]


def judge(gap: ClosedGap, evidence: GatewayEvidence) -> Verdict | None:
    """The verdict on ``gap``, or None while it cannot be told yet."""
    e = evidence
    if e.status_ts is None or e.uptime_s is None or e.status_ts < gap.end:
        return None  # no status from after the gap that says how long the process has run
    process_start = e.status_ts - e.uptime_s * 1000
    facts: dict[str, Any] = {
        "status_ts": e.status_ts, "uptime_s": e.uptime_s, "process_start": process_start,
        "boot": e.status_boot,
    }  # fmt: skip
    if process_start > gap.end:
        return None  # restarted since the gap ended: this status cannot tell what happened during it
    if process_start > gap.start:
        return Verdict(
            NOT_MONITORED,
            f"the gateway process started at {process_start} ms, after the gap began: it was restarted "
            "(or its host rebooted) while unheard, so it did not monitor throughout",
            facts,
        )
    if e.covered is None or e.covered_ts is None or e.covered_ts < gap.end:
        return None  # running throughout, but the backlog has not all arrived yet
    return Verdict(
        DELAYED,
        f"delayed, nothing missing: the gateway process ran throughout (up {e.uptime_s} s at {e.status_ts}) "
        f"and stream {e.stream} is stored without a hole up to seq {e.covered}, stamped after the gap ended",
        {**facts, "stream": e.stream, "covered": e.covered, "covered_ts": e.covered_ts},
    )
