"""The dock at the edge, in one place: portal decisions become movements, and every movement and
scan goes through the door checks and the door alert groups, in that order.

Why one module: a tag passing a dock door is one story (read → pass decided →
movement recorded → judged against the recall list → one alert per pallet →
stack light), and it used to be told in three places: the LLRP source built
movements and decoded their EPC, the app decoded the EPC again to judge it,
and the app also held the checks' and groups' state across reloads.  Here:

* ``passage`` turns a portal decision into a ``Passage``: the contract's
  ``Movement`` plus the EPC decoded once (``decode_epc``), which travels with
  it to the checks instead of being decoded a second time.  The EPC was
  normalised to the edge's one letter case where the read entered
  (``readers.epc.normalise_epc``); the movement's lower-case wire form is made
  here and nowhere else.
* ``Dock`` owns the pure door rules' state (``rules.dock_checks.DoorChecks``,
  ``rules.dock_alert_groups.DoorAlertGroups``) and what the configuration says
  about each door (zone temperature class, a scanner's door, the site's time
  zone for "today"), carries it over a pushed configuration, and attaches the
  reader sources so their passages come here decoded.

What stays elsewhere, and why: the portal itself runs in the LLRP source
(``readers.llrp_source``), because the source's loop is its clock (a tick every
50 ms, also while reconnecting) and a source must still make movements on its
own (tests, tools); the rules stay pure under ``gateway/rules/dock_*`` so the
cloud can re-run them; the app only routes items here and raises what comes
back on the local alarm.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from coldgate.contract.downlink import MasterData, RecallList
from coldgate.contract.ids import MAX_EPOCH_MS
from coldgate.contract.items import Alert, Direction, Movement, Scan
from coldgate.gateway.clock import Clock, Stamp
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.observations import stamp_fields
from coldgate.gateway.readers.config import ReaderConfig
from coldgate.gateway.readers.epc import DecodedEpc, decode_epc
from coldgate.gateway.rules.dock_alert_groups import DoorAlertGroups
from coldgate.gateway.rules.dock_checks import DoorChecks, DoorPolicy, Observation
from coldgate.gateway.rules.dock_knowledge import Knowledge
from coldgate.gateway.rules.dock_portal import PassDecision, PortalConfig

__all__ = ["Dock", "DockReader", "Passage", "PassageSink", "passage", "portal_config"]


def portal_config(config: ReaderConfig) -> PortalConfig:
    """The portal of the door a reader guards; the one-sided wait is at least 4 s (see ``dock_portal``)."""
    return PortalConfig(
        door=config.door,
        reader=config.id,
        outside_antennas=frozenset(config.outside_antennas),
        inside_antennas=frozenset(config.inside_antennas),
        presence_reads=config.presence_reads,
        presence_window_ms=config.presence_window_ms,
        depart_after_ms=config.depart_after_ms,
        stray_max_dwell_ms=config.stray_max_dwell_ms,
        min_rssi=config.min_rssi,
        one_side_wait_ms=max(4000, 2 * config.depart_after_ms),
    )


@dataclass(frozen=True, slots=True)
class Passage:
    """A decided pass: the record for the outbox, and its EPC decoded once for the door checks."""

    movement: Movement
    epc: DecodedEpc


#: Where a reader source hands its passages once a dock is attached.
PassageSink = Callable[[Passage], None]


def passage(decision: PassDecision, stamp: Stamp) -> Passage:
    """The movement of a decided pass, with wall times derived from our clock as ``stamp`` sees it now.

    The portal works on the gateway's monotonic time line (reader clocks are not
    trusted), so first and last seen are mapped back to UTC here, clamped to what
    the contract accepts.
    """
    epc = decode_epc(decision.epc)

    def wall(mono_ms: int) -> int:
        return max(0, min(MAX_EPOCH_MS, stamp.wall_ms + (mono_ms - stamp.mono_ms)))

    first_seen = wall(decision.first_seen_ms)
    movement = Movement(
        **stamp_fields(stamp),  # type: ignore[arg-type]
        reader=decision.reader,
        door=decision.door,
        direction=Direction(decision.direction),
        epc=decision.epc.lower(),  # the contract's wire form: the only place the edge's case changes
        epc_uri=epc.uri,
        first_seen=first_seen,
        last_seen=max(first_seen, wall(decision.last_seen_ms)),
        read_count=max(1, decision.read_count),
        peak_rssi=decision.peak_rssi,
        antennas=list(decision.antennas)[:64],
    )
    return Passage(movement, epc)


class DockReader(Protocol):
    """What the dock needs of a reader source (``readers.llrp_source.LlrpReaderSource``).

    A protocol rather than the class, so the reader source can import this
    module (``passage``) without an import cycle.
    """

    id: str
    passed: PassageSink | None

    def adopt(self, previous: Self) -> None: ...


R = TypeVar("R", bound=DockReader)


class Dock:
    """The door checks and door alert groups of one gateway, fed every movement and scan."""

    def __init__(
        self, config: GatewayConfig, clock: Clock, checks: DoorChecks, groups: DoorAlertGroups
    ) -> None:
        self.config = config
        self.clock = clock
        self.checks = checks
        self.groups = groups
        self._zones = _door_zone_classes(config)
        self._scanner_doors: dict[str, str | None] = {}
        for scanner in config.scanners:
            self._scanner_doors.setdefault(scanner.id, scanner.door)
        #: Picking scanners (``outbound``): their scans are judged as goods leaving.
        self._outbound = {scanner.id for scanner in config.scanners if scanner.outbound}

    @classmethod
    def from_config(
        cls,
        config: GatewayConfig,
        clock: Clock,
        *,
        previous: Dock | None = None,
        master: MasterData | None = None,
        recalls: RecallList | None = None,
    ) -> Dock:
        """The dock of a (re)loaded configuration.

        After a pushed configuration the items on the dock, their TOR clocks and
        the open door alerts and groups carry over (``previous``), under the new
        policy; documents given here replace those in force.
        """
        settings = config.door_checks
        policy = DoorPolicy(
            near_expiry_days=settings.near_expiry_days,
            tor_budget_s=settings.tor_budget_s,
            hold_s=settings.hold_s,
        )
        window_ms = round(settings.group_window_s * 1000)
        if previous is not None:
            checks, groups = previous.checks, previous.groups
            checks.policy = policy
            groups.window_ms = window_ms
        else:
            checks = DoorChecks(policy, Knowledge.from_documents(None, None))
            groups = DoorAlertGroups(window_ms)
        if master is not None or recalls is not None or previous is None:
            checks.update(Knowledge.from_documents(master, recalls))
        return cls(config, clock, checks, groups)

    def attach(self, readers: Sequence[R], previous: Sequence[R], passed: PassageSink) -> None:
        """Route every reader's passages to ``passed`` (the app: record, then ``observe``), and hand
        each reader the passes under way of its predecessor in ``previous`` (same id), so a pushed
        configuration neither doubles nor loses a pallet in the doorway."""
        old = {reader.id: reader for reader in previous}
        for reader in readers:
            if reader.id in old:
                reader.adopt(old[reader.id])
            reader.passed = passed

    def update_documents(self, master: MasterData | None, recalls: RecallList | None) -> None:
        """New master data or recall list from the cloud: items still on the dock are judged again."""
        self.checks.update(Knowledge.from_documents(master, recalls))

    def observe(self, item: Movement | Scan, epc: DecodedEpc | None = None) -> list[Alert]:
        """The door alert steps one movement or scan causes, folded per pallet.

        ``epc``: the movement's EPC as decoded when its pass was decided (a
        ``Passage``); decoded here only for a movement that came without one.
        """
        stamp = self.clock.stamp()
        local = self._local(stamp.wall_ms)
        today, hour = local.date(), local.hour
        if isinstance(item, Movement):
            decoded = epc if epc is not None else decode_epc(item.epc)
            obs = Observation(
                door=item.door,
                zone_class=self._zones.get(item.reader),
                direction=str(item.direction),
                key=item.epc,
                gtin=decoded.gtin,
                lot=None,
                serial=decoded.serial,
                expiry=None,
                today=today,
                hour=hour,
            )
        else:
            obs = Observation(
                door=self._scanner_doors.get(item.scanner) or item.scanner,
                zone_class=self._zones.get(f"scanner:{item.scanner}"),
                direction="out" if item.scanner in self._outbound else None,
                key=item.raw[:200],
                gtin=item.gtin,
                lot=item.lot,
                serial=item.serial,
                expiry=item.expiry,
                today=today,
                hour=hour,
                hibc=item.hibc,
                hibc_uom=item.hibc_uom,
                ma=item.ma,
                expiry_hour=item.expiry_hour,
                best_before=item.best_before,
            )
        return self.groups.fold(self.checks.observe(obs, stamp))

    def _local(self, wall_ms: int) -> datetime.datetime:
        """The site's local time (UTC without a configured zone): expiry is judged by the calendar and
        clock where the goods are, the date and the hour alike, so an expiry hour means the same hour
        on the label and at the door."""
        name = self.config.gateway.timezone
        zone = zoneinfo.ZoneInfo(name) if name else datetime.UTC
        return datetime.datetime.fromtimestamp(wall_ms / 1000, zone)

    def tick(self) -> list[Alert]:
        """Time out of refrigeration and alert holds, folded per pallet; called by the alarm loop."""
        return self.groups.fold(self.checks.tick(self.clock.stamp()))


def _door_zone_classes(config: GatewayConfig) -> dict[str, tuple[float, float] | None]:
    """Reader id and ``scanner:<id>`` -> (low, high) of the zone they scan in, if configured."""

    def zone_class(zone_id: str | None) -> tuple[float, float] | None:
        if zone_id is None:
            return None
        try:
            klass = config.get_temperature_class(config.get_zone(zone_id).temperature_class)
        except KeyError:
            return None
        return (klass.low, klass.high)

    zones = {reader.id: zone_class(reader.zone) for reader in config.readers}
    zones.update({f"scanner:{s.id}": zone_class(s.zone) for s in config.scanners})
    return zones
