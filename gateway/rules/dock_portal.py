"""Dock-door portal: turns a stream of RFID tag reads into one movement per tagged case per pass.

A portal has antennas on both sides of a dock door (the *outside* zone faces
the dock leveller / truck, the *inside* zone faces the warehouse).  The reader
sees each tag many times while a pallet passes; the warehouse needs exactly
one ``PassDecision`` per tag and pass, with a direction, and nothing at all
for goods that merely stand near the door.

Rules, in the order they apply to a read:

1. Reads on antennas of neither zone, or weaker than ``min_rssi``, are ignored
   (and counted): they say nothing about a crossing.
2. A read within ``depart_after_ms`` (T) of the tag's last read continues the
   tag's current pass (within ``one_side_wait_ms`` while only one side has
   seen it, see rule 5); otherwise a new pass begins.  The state lives here, not
   in the reader connection, so a reconnect gap shorter than T does not split a
   pass.  Reads that arrive after their pass was decided but are stamped within
   T of its last read (a reader flushing buffered reports after a reconnect) are
   dropped as *late* instead of opening a second pass.
3. A pass counts only once the tag is *present*: ``presence_reads`` (k) reads
   within ``presence_window_ms``.  Fewer reads are a *glimpse* (a tag on a
   passing forklift in the aisle, a reflection) and are forgotten silently.
4. A zone counts for direction only when it has at least k reads of its own
   in the pass (not within the window: a portal with 200 cases reads each tag
   only a few times a second per antenna, and a windowed rule per zone loses
   real cases; staged goods are handled by rules 5 and 6 and ``min_rssi``).
   The direction is the order in which the tag was *closest* to each zone:
   per zone, the
   power-weighted mean time of its reads (weights 10^(RSSI/10), so the
   strongest reads — the RSSI peak — dominate and one noisy read does not flip
   it).  Outside before inside is ``"in"`` (receiving), inside before outside
   is ``"out"`` (dispatch), equal times are ``"unknown"``.  Without RSSI the
   weights are the read counts.
5. When no read has come for T, ``tick`` decides the pass: two zones → a
   ``PassDecision``; one zone or none → a *stray* (goods staged by the door, a
   tag cross-read through the wall), recorded in ``strays()`` and the
   ``stats`` counters but never emitted as a movement.  A pass seen on one
   side only (or a glimpse) waits ``one_side_wait_ms`` (≥ T) instead: in the
   door frame both antennas read a pallet's inner cases poorly, and a reader
   reconnect adds to that silence, so a case read outside, silent for a
   little more than T, then read inside is still one inbound pass rather than
   two strays.  Nothing was emitted for it yet, so waiting costs only latency
   for tags that were strays anyway.
6. A pass that dwells longer than ``stray_max_dwell_ms`` is a stray (noted
   once per pass).  If only one zone saw it so far (goods staged by the door),
   the evidence restarts, so a case that stood inside for ten minutes and is
   then taken out by a forklift is judged on what followed.  If both zones saw
   it (parked in the doorway), it stays a stray until it departs: the zone
   order of a parked tag says nothing.  Limitations: a crossing that straddles
   the restart instant loses its first zone and becomes a stray (the limit is
   meant to be far longer than a crossing, ≈ 2–6 s); a pallet parked in the
   doorway and then driven through is not a movement (the receiving clerk has
   to confirm it, which a stray note on the door's diagnostics prompts).

Tags are keyed by ``epc_key``: the one letter case an EPC has at the edge
(upper, as the Tag Data Standard and epcpy write hex).  The reader source
normalises each EPC to it where the read enters, so here the fold is a no-op
kept for callers that feed raw text (tests, the simulator's tuples); the
contract's lower-case form is made once, when a decision becomes a
``Movement`` (``gateway.dock.passage``).

Bounded memory: a pass is forgotten when decided (a tombstone with its last
read time is kept for ``late_read_memory_ms`` to catch late reads).  At most
``max_tags`` tags are tracked; when full, the oldest *glimpse* (a tag not yet
present) is evicted first — it is the likeliest noise — and if every tracked
tag is present, the new tag's read is refused.  Both are counted
(``evicted`` / ``refused_reads``): a flood (a reader seeing the whole
warehouse) shows up in diagnostics instead of exhausting a Raspberry Pi, and
the passes already under way still finish correctly.

How this differs from EdgeX app-rfid-llrp-inventory, and why
-------------------------------------------------------------
EdgeX keeps an *inventory*: a tag is ``Arrived`` on its first read (or first
read after ``Departed``), ``Moved`` when another location's moving-average RSSI
beats the current one plus a *mobility profile* offset (threshold, minus a
slope × time since the last read, after a hold-off), and ``Departed`` when it
has not been read for ``DepartedThresholdSeconds`` (600 s by default), checked
by a background task every 30 s; departed tags age out after 336 h.  That fits
shelves and rooms, where the question is "where is it now".  A dock door asks
"which way did it go through, once":

* one decision per pass instead of a stream of Arrived/Moved/Departed events,
  emitted after a short quiet time T (seconds, not ten minutes), because the
  receiving note must be updated while the truck is still at the door;
* direction from the *time order* of the two zones' RSSI peaks, not from which
  location currently has the higher average: on a portal both antennas see the
  pallet, and the average is dominated by where it stands, not where it went;
* a single read never creates anything (EdgeX arrives on the first read):
  cross-reads from staged goods would otherwise be logged as receipts;
* tags seen by one zone only, or dwelling beyond ``stray_max_dwell_ms``, are
  strays, not movements; EdgeX has no notion of a pass to reject them from;
* the clock is passed in (``tick``) and reader timestamps are used as given,
  instead of a background timer and EdgeX's ``AdjustLastReadOnByOrigin``
  re-stamping, so the same code re-runs deterministically in tests and the
  cloud;
* memory is bounded by a tag cap and by forgetting decided passes, rather than
  by age-out after two weeks.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

Direction = Literal["in", "out", "unknown"]
Zone = Literal["outside", "inside"]
StrayReason = Literal["one zone", "no zone", "dwell"]
_ZONES: tuple[Zone, Zone] = ("outside", "inside")


def epc_key(epc: str) -> str:
    """The one letter case of an EPC at the edge; chosen here, the lowest layer that keys tags by it."""
    return epc.upper()


@dataclass(frozen=True, slots=True)
class PortalConfig:
    """One dock door's portal: which antennas face which side, and the timing that separates passes.

    ``one_side_wait_ms`` is the quiet time for a tag seen on one side only
    (rule 5 of the module docstring); ``max_tags`` and ``late_read_memory_ms``
    bound memory; ``stray_log`` is how many recent strays ``strays()`` keeps.
    """

    door: str
    reader: str
    outside_antennas: frozenset[int]
    inside_antennas: frozenset[int]
    presence_reads: int = 2
    presence_window_ms: int = 1000
    depart_after_ms: int = 2000
    stray_max_dwell_ms: int = 30000
    min_rssi: float | None = None
    max_tags: int = 10000
    one_side_wait_ms: int = 4000
    late_read_memory_ms: int = 60000
    stray_log: int = 256

    def __post_init__(self) -> None:
        """Reject a config that would make every pass a stray or never end one, naming the key."""
        if not self.outside_antennas:
            raise ValueError("outside_antennas: at least one antenna is needed to tell a direction")
        if not self.inside_antennas:
            raise ValueError("inside_antennas: at least one antenna is needed to tell a direction")
        both = self.outside_antennas & self.inside_antennas
        if both:
            raise ValueError(f"inside_antennas: antennas {sorted(both)} are also outside antennas")
        for key in ("presence_reads", "presence_window_ms", "depart_after_ms", "max_tags", "stray_log"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.stray_max_dwell_ms <= self.presence_window_ms:
            raise ValueError("stray_max_dwell_ms: must be longer than presence_window_ms")
        if self.one_side_wait_ms < self.depart_after_ms:
            raise ValueError("one_side_wait_ms: must not be shorter than depart_after_ms")
        if self.late_read_memory_ms < 0:
            raise ValueError("late_read_memory_ms: must not be negative")


@dataclass(frozen=True, slots=True)
class TagRead:
    """One tag report: ``count`` is the reader's TagSeenCount (several reads folded into one report)."""

    epc: str
    antenna: int
    rssi: float | None
    ts_ms: int
    count: int = 1


@dataclass(frozen=True, slots=True)
class PassDecision:
    """One tagged case (or pallet) went through ``door`` in ``direction``; emitted once per pass."""

    epc: str
    door: str
    reader: str
    direction: Direction
    first_seen_ms: int
    last_seen_ms: int
    read_count: int
    peak_rssi: float | None
    antennas: tuple[int, ...]
    decided_ms: int


@dataclass(frozen=True, slots=True)
class StrayNote:
    """A tag that was present at the door but did not cross it (diagnostics only, never a movement)."""

    epc: str
    reason: StrayReason
    zones: tuple[Zone, ...]
    first_seen_ms: int
    last_seen_ms: int
    read_count: int
    antennas: tuple[int, ...]


@dataclass(slots=True)
class PortalStats:
    """Counters for diagnostics: every read and every pass ends up in exactly one of them."""

    reads: int = 0
    unzoned_reads: int = 0
    weak_reads: int = 0
    late_reads: int = 0
    refused_reads: int = 0
    glimpses: int = 0
    strays: int = 0
    evicted: int = 0
    decisions: int = 0


@dataclass(slots=True)
class _ZoneEvidence:
    """Per zone of one pass: presence window and the power-weighted read time (offsets from pass start)."""

    reads: int = 0
    present: bool = False
    weight: float = 0.0
    weighted_t: float = 0.0


@dataclass(slots=True)
class _Pass:
    """Everything known about one tag's current pass; dropped when the pass is decided."""

    first_ms: int
    last_ms: int
    origin_ms: int  # fixed time origin of the weighted read times, so late out-of-order reads cannot shift it
    reads: int = 0
    peak_rssi: float | None = None
    antennas: set[int] = field(default_factory=set)
    recent: deque[tuple[int, int]] = field(default_factory=deque)
    present: bool = False
    noted_stray: bool = False
    parked: bool = False  # dwelled in the doorway seen from both sides: never a movement
    zones: dict[str, _ZoneEvidence] = field(default_factory=dict)


def _window_add(recent: deque[tuple[int, int]], ts_ms: int, count: int, window_ms: int) -> int:
    """Add a read to a sliding presence window and return the reads now inside it.

    The window holds only a handful of reads, so it is simply re-filtered: that
    keeps it right when a reader delivers reports slightly out of time order.
    """
    recent.append((ts_ms, count))
    newest = max(t for t, _ in recent)
    kept = [(t, c) for t, c in recent if t > newest - window_ms]
    recent.clear()
    recent.extend(kept)
    return sum(c for _, c in kept)


def _restart(track: _Pass, ts: int) -> None:
    """Drop a pass's evidence but keep its identity (presence, stray note) and its place in memory."""
    track.first_ms = track.last_ms = track.origin_ms = ts
    track.recent.clear()
    track.reads = 0
    track.peak_rssi = None
    track.antennas = set()
    track.zones = {}


class DockPortal:
    """The portal state machine for one door: feed ``read``, call ``tick`` with the clock, collect decisions.

    Reader timestamps (``TagRead.ts_ms``) and ``tick``'s ``now_ms`` must be on
    the same clock; the caller maps reader time to gateway time.
    """

    def __init__(self, config: PortalConfig) -> None:
        """Start with no tags tracked; ``config`` is validated by ``PortalConfig``."""
        self.config = config
        self._zone_of: dict[int, Zone] = {a: "outside" for a in config.outside_antennas}
        self._zone_of.update({a: "inside" for a in config.inside_antennas})
        # Ordered by arrival of each tag's latest read, so ``tick`` finds quiet tags at the front.
        self._glimpses: OrderedDict[str, _Pass] = OrderedDict()
        self._passes: OrderedDict[str, _Pass] = OrderedDict()
        self._closed: OrderedDict[str, int] = OrderedDict()  # epc -> last read of its decided pass
        self._due: list[tuple[str, _Pass]] = []  # passes ended by a read after a long gap, decided at tick
        self._strays: deque[StrayNote] = deque(maxlen=config.stray_log)
        self._stats = PortalStats()

    # -- input -------------------------------------------------------------------------------------------

    def read(self, tag_read: TagRead) -> None:
        """Take one tag report into the current pass of its tag (see the module docstring for the rules)."""
        cfg, stats = self.config, self._stats
        stats.reads += 1
        zone = self._zone_of.get(tag_read.antenna)
        if zone is None:
            stats.unzoned_reads += 1
            return
        rssi = tag_read.rssi
        if cfg.min_rssi is not None and rssi is not None and rssi < cfg.min_rssi:
            stats.weak_reads += 1
            return
        epc, ts, count = epc_key(tag_read.epc), tag_read.ts_ms, max(1, tag_read.count)
        closed_last = self._closed.get(epc)
        if closed_last is not None and ts <= closed_last + cfg.depart_after_ms:
            stats.late_reads += 1
            return
        track = self._passes.get(epc)
        if track is not None and ts > track.last_ms + self._wait(track):
            # Quiet for longer than its wait but not yet ticked: that pass is over, this read starts the next.
            del self._passes[epc]
            self._due.append((epc, track))
            self._close(epc, track.last_ms)
            track = None
        if track is not None:
            self._passes.move_to_end(epc)
        else:
            track = self._glimpses.get(epc)
            if track is not None:
                self._glimpses.move_to_end(epc)
            elif not self._make_room():
                stats.refused_reads += 1
                return
            else:
                track = _Pass(first_ms=ts, last_ms=ts, origin_ms=ts)
                self._glimpses[epc] = track
        if ts - track.first_ms > cfg.stray_max_dwell_ms and not track.parked:
            self._dwelled(epc, track, ts)
        elif not track.present and ts > track.last_ms + self._wait(track):
            stats.glimpses += 1  # an old glimpse not yet ticked away: it is over, start afresh
            _restart(track, ts)
        self._add(track, zone, tag_read.antenna, rssi, ts, count)
        if not track.present:
            if _window_add(track.recent, ts, count, cfg.presence_window_ms) >= cfg.presence_reads:
                track.present = True
                track.recent.clear()
                del self._glimpses[epc]
                self._passes[epc] = track

    def _add(self, track: _Pass, zone: Zone, antenna: int, rssi: float | None, ts: int, count: int) -> None:
        cfg = self.config
        track.last_ms = max(track.last_ms, ts)
        track.first_ms = min(track.first_ms, ts)
        track.reads += count
        track.antennas.add(antenna)
        if rssi is not None and (track.peak_rssi is None or rssi > track.peak_rssi):
            track.peak_rssi = rssi
        ev = track.zones.get(zone)
        if ev is None:
            ev = track.zones[zone] = _ZoneEvidence()
        ev.reads += count
        ev.present = ev.reads >= cfg.presence_reads
        weight = count * (10.0 ** (rssi / 10.0) if rssi is not None else 1.0)
        ev.weight += weight
        ev.weighted_t += weight * (ts - track.origin_ms)

    def _dwelled(self, epc: str, track: _Pass, ts: int) -> None:
        """The tag has been at the door too long to be passing: note it once, then judge what follows.

        Seen so far on one side only (goods staged by the door): the evidence
        restarts, so a forklift later taking it through still makes a movement.
        Seen on both sides (parked in the doorway): its zone order says nothing,
        and restarting would only produce a random direction later, so the pass
        stays a stray until the tag departs.  A glimpse is not a stray at all.
        """
        if not track.present:
            _restart(track, ts)
            return
        if not track.noted_stray:
            self._note_stray(epc, track, "dwell")
        if sum(1 for ev in track.zones.values() if ev.present) == 2:
            track.parked = True
        else:
            _restart(track, ts)

    def _make_room(self) -> bool:
        """Keep at most ``max_tags`` tracked: evict the oldest glimpse, else refuse the newcomer."""
        if len(self._glimpses) + len(self._passes) < self.config.max_tags:
            return True
        if self._glimpses:
            self._glimpses.popitem(last=False)
            self._stats.evicted += 1
            return True
        return False

    # -- clock -------------------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[PassDecision]:
        """Decide every pass whose tag has had no read for ``depart_after_ms``; return the movements."""
        cfg = self.config
        for epc in self._quiet(self._glimpses, now_ms):
            del self._glimpses[epc]
            self._stats.glimpses += 1
        decisions: list[PassDecision] = []
        for epc, track in self._due:
            decision = self._decide(epc, track, max(now_ms, track.last_ms + cfg.depart_after_ms))
            if decision is not None:
                decisions.append(decision)
        self._due.clear()
        for epc in self._quiet(self._passes, now_ms):
            track = self._passes.pop(epc)
            decision = self._decide(epc, track, now_ms)
            if decision is not None:
                decisions.append(decision)
            self._close(epc, track.last_ms)
        forget_before = now_ms - cfg.depart_after_ms - cfg.late_read_memory_ms
        while self._closed and (
            next(iter(self._closed.values())) < forget_before or len(self._closed) > cfg.max_tags
        ):
            self._closed.popitem(last=False)
        return decisions

    def _wait(self, track: _Pass) -> int:
        """How long a tag must be quiet before its pass is over: longer while only one side has seen it."""
        crossed = track.parked or sum(1 for ev in track.zones.values() if ev.present) == 2
        return self.config.depart_after_ms if crossed else self.config.one_side_wait_ms

    def _quiet(self, tracks: OrderedDict[str, _Pass], now_ms: int) -> list[str]:
        """The tags in ``tracks`` whose pass is over at ``now_ms``.

        ``tracks`` is ordered by the arrival of each tag's latest read, so the
        scan stops at the first tag read within T; only one-sided passes that
        are quiet for T but not yet for ``one_side_wait_ms`` are stepped over.
        """
        quiet_before = now_ms - self.config.depart_after_ms
        over: list[str] = []
        for epc, track in tracks.items():
            if track.last_ms > quiet_before:
                break
            if now_ms - track.last_ms >= self._wait(track):
                over.append(epc)
        return over

    def _close(self, epc: str, last_ms: int) -> None:
        """Remember a decided pass's last read for a while, so its late reads are recognised."""
        self._closed[epc] = last_ms
        self._closed.move_to_end(epc)

    def _decide(self, epc: str, track: _Pass, now_ms: int) -> PassDecision | None:
        zones = {z: ev for z, ev in track.zones.items() if ev.present}
        if len(zones) < 2 or track.parked:
            if not track.noted_stray:
                self._note_stray(epc, track, "one zone" if zones else "no zone")
            return None
        outside, inside = zones["outside"], zones["inside"]
        t_out = outside.weighted_t / outside.weight
        t_in = inside.weighted_t / inside.weight
        direction: Direction = "in" if t_out < t_in else "out" if t_in < t_out else "unknown"
        self._stats.decisions += 1
        return PassDecision(
            epc=epc,
            door=self.config.door,
            reader=self.config.reader,
            direction=direction,
            first_seen_ms=track.first_ms,
            last_seen_ms=track.last_ms,
            read_count=track.reads,
            peak_rssi=track.peak_rssi,
            antennas=tuple(sorted(track.antennas)),
            decided_ms=now_ms,
        )

    def _note_stray(self, epc: str, track: _Pass, reason: StrayReason) -> None:
        track.noted_stray = True
        self._stats.strays += 1
        zones = tuple(z for z in _ZONES if z in track.zones and track.zones[z].present)
        self._strays.append(
            StrayNote(
                epc=epc,
                reason=reason,
                zones=zones,
                first_seen_ms=track.first_ms,
                last_seen_ms=track.last_ms,
                read_count=track.reads,
                antennas=tuple(sorted(track.antennas)),
            )
        )

    # -- diagnostics -------------------------------------------------------------------------------------

    def strays(self) -> tuple[StrayNote, ...]:
        """The most recent strays (at most ``config.stray_log``), oldest first."""
        return tuple(self._strays)

    @property
    def stats(self) -> PortalStats:
        """A copy of the counters, so a caller cannot change the portal's."""
        return replace(self._stats)

    def tracked(self) -> int:
        """Tags currently held in memory (glimpses + passes under way), bounded by ``max_tags``."""
        return len(self._glimpses) + len(self._passes) + len(self._due)


def feed_all(
    portal: DockPortal,
    reads: Iterable[TagRead | tuple[int, int, str, float | None, int]],
    tick_every_ms: int = 100,
) -> list[PassDecision]:
    """Feed a time-ordered read stream, ticking every ``tick_every_ms`` of read time, then tick until drained.

    This is how the gateway drives a portal (reads as they come, a clock tick
    a few times a second), so it is also the unit ``bench.portal`` times.
    Tuples are the simulator's ``(ts_ms, antenna, epc_hex, rssi, count)``.
    """
    decisions: list[PassDecision] = []
    next_tick: int | None = None
    last_ts = 0
    for item in reads:
        tag_read = item if isinstance(item, TagRead) else TagRead(item[2], item[1], item[3], item[0], item[4])
        if next_tick is None:
            next_tick = tag_read.ts_ms + tick_every_ms
        while tag_read.ts_ms >= next_tick:
            decisions.extend(portal.tick(next_tick))
            next_tick += tick_every_ms
        portal.read(tag_read)
        last_ts = max(last_ts, tag_read.ts_ms)
    if next_tick is None:
        return decisions
    cfg = portal.config
    drained_at = last_ts + max(cfg.depart_after_ms, cfg.one_side_wait_ms)
    while next_tick < drained_at:
        decisions.extend(portal.tick(next_tick))
        next_tick += tick_every_ms
    decisions.extend(portal.tick(drained_at))
    return decisions
