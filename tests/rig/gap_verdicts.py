"""A cloud "gateway unheard" gap judged "delayed, nothing missing", made through the real path (status
and batches through ingest, the watchdog, ``decide_gaps``): for the verdict's page tests and the browser
flow."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from sqlalchemy import Engine

from coldgate.cloud.alerts.gap_verdicts import DELAYED
from coldgate.cloud.alerts.gap_verdicts_watch import decide_gaps
from coldgate.cloud.alerts.gateway_unheard_watch import check_gateways
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import batch_message, enrol, reading, status_message

__all__ = ["T", "judged_delayed"]

T = int(RECEIVED.timestamp() * 1000)


def judged_delayed(engine: Engine, gateway: str = "gw01", start: int = T) -> None:
    """``gateway`` heard at ``start`` (up an hour, ten readings), unheard past the 180 s timeout, heard
    again at ``start`` + 250 s still running, its backlog (readings 11..260 of cr1-t01) then delivered and
    the gap judged delayed.  The browser test calls this too, for a gateway of its own, before the other
    gateways were last heard (``RECEIVED``) so the watchdog finds only this one unheard."""
    at = _moment(start)
    enrol(engine, [gateway])
    ingest(engine, *status_message(gateway, ts=start, last_seq=10, uptime_s=3600), now=at(0))
    heard = [reading(n, ts=start - (10 - n) * 1000) for n in range(1, 11)]
    ingest(engine, *batch_message(gateway, heard), now=at(0))
    [opened] = check_gateways(engine, at(200), 180.0)
    back = status_message(gateway, ts=start + 250_000, last_seq=260, uptime_s=3600 + 250)
    ingest(engine, *back, now=at(250))
    [closed] = check_gateways(engine, at(251), 180.0)
    assert (opened.start, closed.start, closed.end) == (start, start, start + 250_000)  # type: ignore[union-attr]
    backlog = [reading(n, ts=start + (n - 10) * 1000) for n in range(11, 261)]
    ingest(engine, *batch_message(gateway, backlog), now=at(253))
    [(_, verdict)] = decide_gaps(engine, at(254))
    assert verdict.verdict == DELAYED


def _moment(start: int) -> Callable[[float], datetime.datetime]:
    return lambda seconds: datetime.datetime.fromtimestamp(start / 1000 + seconds, datetime.UTC)
