"""Offline sources become alerts: a gap record alone tells nobody (DESIGN.md, principle 5).

Sensors, readers and scanners that stop answering write a ``Gap`` (open, then
the same gap closed once they answer again).  This rule watches those gaps as
they are produced and turns an outage that lasts into an alert, rule
``source.offline``, subject the source::

    rule = OfflineSources(offline_params_from_config(config))
    for every gap a source emits:  for alert in rule.observe(gap): outbox.put(alert); alarm...
    every few seconds:             for alert in rule.tick(stamp): ...
    sleep at most:                 rule.due_in_ms(stamp)

* An open gap of a sensor, reader or scanner starts the outage's timer at the
  gap's ``start`` (the first failed poll: monitoring was lost then, the gap is
  only opened ``offline_after`` polls later).  Other subjects (the gateway,
  the outbox) are not sources and are ignored here.
* Once the outage has lasted ``after_ms`` (the source's policy), ``tick`` (or
  the gap itself, when the delay is already over) raises **one** alert for it.
  An open gap sent again for a source already offline changes nothing.
* The closed gap ends the outage: ``cleared`` if an alert was raised, nothing
  otherwise (a short outage stays a gap record only).  ``back`` does the same
  when the app knows the source is back without a closed gap (a source
  rebuilt by a pushed configuration starts with no gap to close).

Durations are measured as everywhere in the rules (``timebase.elapsed_ms``):
on the monotonic clock within a boot, never on a wall clock that may step.
The gap's start is mapped onto the gap's own boot and monotonic time
(``mono - (ts - start)``).  No clock is read here: ``tick`` gets the stamp.

The alert id is ``<source>.source.offline.<hash>`` (``alerts.alert_id``) over
the source and the outage's start, so the same gaps give the same ids in the
cloud, and one outage never has two.  A source that goes offline again at the
very mark its last raised outage started (it answered and failed within one
monotonic millisecond) would get that outage's id back, and the cloud would
fold a new outage into a cleared alert; such a repeat is numbered into the
hash (``#1``, ``#2``...), still deterministic.  The last raised mark of every
source is part of the state a pushed configuration carries over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Gap, Severity, SubjectType
from coldgate.gateway.observations import UNSEQUENCED
from coldgate.gateway.rules.alerts import alert_id, fmt_duration
from coldgate.gateway.rules.dock_checks import StampLike
from coldgate.gateway.rules.timebase import Mark, elapsed_ms

if TYPE_CHECKING:
    from coldgate.gateway.config import GatewayConfig

RULE = "source.offline"
WATCHED = frozenset({SubjectType.SENSOR, SubjectType.READER, SubjectType.SCANNER})
COLD_HIGH_C = 8.0  # a class whose high limit is at or below this is a cold chain (2-8 °C, frozen)
_DETAIL_MAX = 200


@dataclass(frozen=True)
class OfflinePolicy:
    """How long a source may be offline before its alert, and how bad that alert is."""

    after_ms: int
    severity: Severity


@dataclass(frozen=True)
class OfflineParams:
    """The policy of every source: ``per_source`` by ``"<subject_type>:<id>"``, else ``default``.

    ``enabled = False``: no alerts at all (gaps are still recorded by the sources).
    """

    default: OfflinePolicy = OfflinePolicy(after_ms=900_000, severity=Severity.WARNING)
    per_source: Mapping[str, OfflinePolicy] = field(default_factory=dict)
    enabled: bool = True

    def policy(self, subject_type: SubjectType, subject: str) -> OfflinePolicy:
        return self.per_source.get(source_key(subject_type, subject), self.default)


def source_key(subject_type: SubjectType | str, subject: str) -> str:
    return f"{subject_type}:{subject}"


def offline_params_from_config(config: GatewayConfig) -> OfflineParams:
    """The policies of a gateway config's sources (see ``gateway.config.OfflineAlertsConfig``).

    A sensor takes its zone's policy: the zone's own ``[[offline_alerts.zones]]``
    entry, else the cold one when the zone's class is cold (high <= 8 °C), else
    the default, which readers, scanners and sensors without a zone also get.
    """
    settings = config.offline_alerts
    default = OfflinePolicy(round(settings.after_s * 1000), settings.severity)
    cold = OfflinePolicy(round(settings.cold_after_s * 1000), settings.cold_severity)
    overrides = {z.zone: OfflinePolicy(round(z.after_s * 1000), z.severity) for z in settings.zones}
    classes = {c.name: c for c in config.temperature_classes}
    zones: dict[str, OfflinePolicy] = {}
    for zone in config.zones:
        klass = classes.get(zone.temperature_class)
        is_cold = klass is not None and klass.high <= COLD_HIGH_C
        zones[zone.id] = overrides.get(zone.id, cold if is_cold else default)
    per_source = {
        source_key(SubjectType.SENSOR, sensor.id): zones[sensor.zone]
        for sensor in config.sensors
        if sensor.zone is not None and sensor.zone in zones
    }
    return OfflineParams(default=default, per_source=per_source, enabled=settings.enabled)


@dataclass(frozen=True)
class Outage:
    """One source offline: since ``start`` (its gap's start, on the gap's time line)."""

    subject_type: SubjectType
    subject: str
    gap_start: int  # wall ms, as in the gap record
    start: Mark
    cause: str
    detail: str
    alert_id: str | None = None  # set once raised
    severity: Severity | None = None  # of the raised alert


def _start_mark(gap: Gap) -> Mark:
    """The gap's start on the gap's boot and monotonic line (it was opened some polls later)."""
    lead = max(0, gap.ts - gap.start)
    return Mark(ts=gap.start, boot=gap.boot, mono=max(0, gap.mono - lead))


def _now(stamp: StampLike) -> Mark:
    return Mark(ts=stamp.wall_ms, boot=stamp.boot, mono=stamp.mono_ms)


@dataclass(frozen=True)
class OfflineState:
    """What one rule hands the next after a pushed configuration.

    ``outages``: the sources offline now; ``last_raised``: per source key, the start
    mark of its newest raised outage and that outage's repeat number (see the module).
    """

    outages: Mapping[str, Outage] = field(default_factory=dict)
    last_raised: Mapping[str, tuple[Mark, int]] = field(default_factory=dict)


class OfflineSources:
    """The open outages of one gateway; ``observe``, ``tick`` and ``back`` return alert steps."""

    def __init__(self, params: OfflineParams, state: OfflineState | None = None) -> None:
        self.params = params
        self._open: dict[str, Outage] = dict(state.outages) if state is not None else {}
        self._last_raised: dict[str, tuple[Mark, int]] = dict(state.last_raised) if state is not None else {}

    # -- inputs ------------------------------------------------------------------------------------

    def observe(self, gap: Gap) -> list[Alert]:
        """A gap as a source produced it; the alert steps it causes, stamped with the gap's stamp."""
        if gap.subject_type not in WATCHED:
            return []
        key = source_key(gap.subject_type, gap.subject)
        stamp = _GapStamp(gap.ts, gap.mono, gap.boot, gap.synced)
        if gap.end is not None:
            ended = self._open.pop(key, None)
            if ended is None:
                return []
            return self._cleared(ended, stamp, f"answered again after {self._lasted(ended, stamp)}")
        if key not in self._open:
            self._open[key] = Outage(
                subject_type=gap.subject_type,
                subject=gap.subject,
                gap_start=gap.start,
                start=_start_mark(gap),
                cause=str(gap.cause),
                detail=gap.detail[:_DETAIL_MAX],
            )
        return self.tick(stamp)

    def back(self, subject_type: SubjectType, subject: str, stamp: StampLike, why: str) -> list[Alert]:
        """End the outage of a source known to be back (or gone) without a closed gap."""
        ended = self._open.pop(source_key(subject_type, subject), None)
        if ended is None:
            return []
        return self._cleared(ended, stamp, why)

    def tick(self, stamp: StampLike) -> list[Alert]:
        """Raise the alert of every outage that has now lasted its delay (once per outage)."""
        if not self.params.enabled:
            return []
        now = _now(stamp)
        out: list[Alert] = []
        for key, outage in self._open.items():
            if outage.alert_id is not None:
                continue
            policy = self.params.policy(outage.subject_type, outage.subject)
            lasted = elapsed_ms(outage.start, now)
            if lasted < policy.after_ms:
                continue
            raised = replace(outage, alert_id=self._new_id(key, outage), severity=policy.severity)
            self._open[key] = raised
            text = (
                f"{outage.subject_type} {outage.subject} offline for {fmt_duration(lasted)} "
                f"(alert after {fmt_duration(policy.after_ms)}): {outage.detail}"
            )
            out.append(self._alert(raised, AlertAction.RAISED, text, stamp, lasted))
        return out

    # -- questions ---------------------------------------------------------------------------------

    def due_in_ms(self, stamp: StampLike) -> int | None:
        """Milliseconds until the next outage's alert is due (0: due now); None if none is waiting."""
        if not self.params.enabled:
            return None
        now = _now(stamp)
        waits = [
            max(0, self.params.policy(o.subject_type, o.subject).after_ms - elapsed_ms(o.start, now))
            for o in self._open.values()
            if o.alert_id is None
        ]
        return min(waits) if waits else None

    def outages(self) -> list[Outage]:
        """The sources offline now, raised or not yet, oldest first."""
        return sorted(self._open.values(), key=lambda o: (o.gap_start, o.subject))

    def snapshot(self) -> OfflineState:
        """All state (frozen values): hand it to the next rule after a pushed configuration."""
        return OfflineState(outages=dict(self._open), last_raised=dict(self._last_raised))

    def _new_id(self, key: str, outage: Outage) -> str:
        """The id of an outage raised now; a repeat at its source's last raised mark is numbered."""
        last = self._last_raised.get(key)
        same = last is not None and (last[0].boot, last[0].mono) == (outage.start.boot, outage.start.mono)
        repeat = last[1] + 1 if last is not None and same else 0
        self._last_raised[key] = (outage.start, repeat)
        kind = str(outage.subject_type) if repeat == 0 else f"{outage.subject_type}#{repeat}"
        return alert_id(outage.subject, kind, RULE, outage.start)

    # -- alerts --------------------------------------------------------------------------------------

    def _lasted(self, outage: Outage, stamp: StampLike) -> str:
        return fmt_duration(elapsed_ms(outage.start, _now(stamp)))

    def _cleared(self, outage: Outage, stamp: StampLike, why: str) -> list[Alert]:
        if outage.alert_id is None:
            return []
        lasted = elapsed_ms(outage.start, _now(stamp))
        text = f"{outage.subject_type} {outage.subject} back: {why}"
        return [self._alert(outage, AlertAction.CLEARED, text, stamp, lasted)]

    def _alert(self, outage: Outage, action: AlertAction, text: str, stamp: StampLike, lasted: int) -> Alert:
        assert outage.alert_id is not None and outage.severity is not None
        end = max(outage.gap_start, stamp.wall_ms) if action is AlertAction.CLEARED else None
        return Alert(
            seq=UNSEQUENCED,
            ts=stamp.wall_ms,
            boot=stamp.boot,
            mono=stamp.mono_ms,
            synced=stamp.synced,
            alert_id=outage.alert_id,
            action=action,
            rule=RULE,
            subject_type=outage.subject_type,
            subject=outage.subject,
            severity=outage.severity,
            message=text[:1000],
            evidence=Evidence(
                start=outage.gap_start,
                end=end,
                duration_s=lasted // 1000,
                details={"cause": outage.cause},
            ),
        )


@dataclass(frozen=True)
class _GapStamp:
    """A gap's own time stamp, in the shape of ``StampLike``."""

    wall_ms: int
    mono_ms: int
    boot: str
    synced: bool
