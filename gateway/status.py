"""The gateway's status, one model for everyone: the contract's ``Status``.

The heartbeat, the birth and the last will, the control socket (``coldgate
gateway alarm status``) and ``coldgate gateway status`` all show the same
``contract.Status``, assembled here and nowhere else.  The app knows sensors,
readers, scanners and the alarm (``AppStatus``), the outbox knows its depth,
the clock knows whether it is synchronised, and the uplink and down-link know
what went wrong; ``build_status`` puts them together.  ``StatusErrors`` is the short memory of
problems an operator should see (a rejected config, an ack from the future):
they stay in every status until newer ones push them out, because a retained
status is read by whoever looks next, not by whoever was watching.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from coldgate.contract.uplink import (
    AlarmState,
    ClockState,
    DocumentVersions,
    LinkState,
    SensorState,
    State,
    Status,
    StatusError,
    Topology,
)
from coldgate.gateway.clock import Clock, Stamp

SOFTWARE = "coldgate 0.1.0"
MESSAGE_MAX = 1000  # contract Text


@runtime_checkable
class OutboxFigures(Protocol):
    """The part of ``gateway.buffer.outbox.Outbox`` a status needs."""

    @property
    def committed_seq(self) -> int: ...

    @property
    def acked_seq(self) -> int: ...

    def depth(self) -> int: ...

    def oldest_unacked_ts(self) -> int | None: ...


class StatusErrors:
    """Recent problems, newest last; the same kind and message again only refreshes its time."""

    def __init__(self, keep: int = 20) -> None:
        self._errors: deque[StatusError] = deque(maxlen=keep)

    def add(self, kind: str, message: str, ts_ms: int) -> StatusError:
        text = message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"
        for old in list(self._errors):
            if old.kind == kind and old.message == text:
                self._errors.remove(old)
        error = StatusError(kind=kind, message=text, ts=ts_ms)
        self._errors.append(error)
        return error

    def recent(self) -> list[StatusError]:
        return list(self._errors)

    def kinds(self) -> list[str]:
        return [error.kind for error in self._errors]


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The parts of a status only the running app knows, already in the contract's terms."""

    alarm: AlarmState | None = None
    sensors: Sequence[SensorState] = ()
    readers: Sequence[LinkState] = ()
    scanners: Sequence[LinkState] = ()


def build_status(
    *,
    site: str,
    gateway: str,
    clock: Clock,
    outbox: OutboxFigures | None = None,
    heartbeat_s: float | None = None,
    started_mono: float | None = None,
    app: AppStatus | None = None,
    versions: DocumentVersions | None = None,
    errors: Sequence[StatusError] = (),
    clock_source: str | None = None,
    software: str = SOFTWARE,
    topology: Topology | None = None,
) -> Status:
    """An online status taken now; ``started_mono`` is ``clock.monotonic()`` at process start.

    Without ``app`` (the uplink on its own, or its fallback when the app's part
    failed) the status still says what the outbox, clock and links know.
    """
    stamp = clock.stamp()
    app = app or AppStatus()
    figures: dict[str, int | None] = {}
    if outbox is not None:
        figures = {
            "outbox_depth": outbox.depth(),
            "oldest_unacked": outbox.oldest_unacked_ts(),
            "last_seq": outbox.committed_seq or None,
            "last_acked_seq": outbox.acked_seq or None,
        }
    uptime = None if started_mono is None else max(0, int(clock.monotonic() - started_mono))
    return Status(
        v=1,
        site=site,
        gateway=gateway,
        boot=stamp.boot,
        ts=stamp.wall_ms,
        state=State.ONLINE,
        software=software,
        heartbeat_s=None if heartbeat_s is None else max(0, round(heartbeat_s)),
        uptime_s=uptime,
        clock=clock_state(stamp, clock_source),
        alarm=app.alarm,
        sensors=list(app.sensors),
        readers=list(app.readers),
        scanners=list(app.scanners),
        versions=versions,
        errors=list(errors)[-100:],
        topology=topology,
        **figures,  # type: ignore[arg-type]
    )


def clock_state(stamp: Stamp, source: str | None = None) -> ClockState:
    """With ``mono`` beside the status's ``ts``, a synchronised status is a correction anchor."""
    return ClockState(synced=stamp.synced, mono=stamp.mono_ms, source=source)


def will_status(site: str, gateway: str, clock: Clock) -> Status:
    """The last will: only the required fields, ``ts`` when it was registered."""
    stamp = clock.stamp()
    return Status(
        v=1, site=site, gateway=gateway, boot=stamp.boot, ts=stamp.wall_ms, state=State.OFFLINE, will=True
    )
