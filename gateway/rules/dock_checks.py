"""Batch validity at the dock door: is this item allowed to pass, and is it out of its cold chain?

The gateway learns what passes a door from RFID movements (EPC → GTIN,
serial; no lot on an SGTIN tag) and barcode scans (GTIN, HIBC code or MA id;
lot, expiry, serial as printed).  It judges each against the documents the
cloud pushed down (master data, recall/quarantine list) *locally*, because
the dock has to be stopped while the truck is still there, with or without a
network.  Whichever identifier a label carries, the item is judged as the
product master data lists it under (``Knowledge.product_key``), so an HIBC-
or MA-labelled device gets the same checks as a GS1-labelled one.

One of the dock's pure rules, kept beside them under the ``dock_`` prefix:
``dock_portal`` (reads → one decision per tag and pass), ``dock_knowledge``
(the index over the pushed documents these checks read), this module (one
item → alert steps) and ``dock_alert_groups`` (item alerts → one per pallet).
``gateway.dock.Dock`` is the one place at the edge that runs them in that
order for every movement and scan.

::

    checks = DoorChecks(DoorPolicy(), Knowledge.from_documents(master, recalls))
    for alert in checks.observe(obs, stamp): outbox.put(alert); local_alarm.consider(alert)
    every second or so: for alert in checks.tick(stamp): ...
    on a new document:  checks.update(Knowledge.from_documents(master, recalls))

Rules and severities (``direction == "out"`` is an outbound movement; a scan
has no direction, so the app (``gateway/dock.py``) maps a scan by a picking
scanner (``[[scanners]] outbound = true``) to "out", for the critical level there):

======================================  ============  ================================
rule                                    out           in / unknown / scan
======================================  ============  ================================
``door.recalled``                       critical      warning
``door.quarantined``                    critical      warning
``door.recall_unresolved``              warning       warning
``door.expired``                        critical      warning
``door.near_expiry``                    warning       warning
``door.best_before_passed``             warning       warning
``door.unknown_gtin``                   warning       warning
``door.time_out_of_refrigeration``      (never)       warning at ``tor_warn_at`` of the
                                                      budget, updated to critical when
                                                      the budget is spent (by ``tick``)
======================================  ============  ================================

Why these choices:

* Outbound is critical because shipping a recalled, quarantined or expired
  unit is the harm; receiving one is a paperwork problem (it must be put on
  hold, not stop the dock), so inbound is a warning.
* ``door.recall_unresolved``: a recall entry names a lot (or a serial) the
  item does not tell us (an SGTIN tag has no lot; a case barcode may have no
  serial).  It never passes silently, but it stays a *warning* even outbound:
  a lot-specific recall would otherwise stop every case of a product with a
  big installed base, and a stack light that goes off for every case is an
  alarm people learn to ignore.  The message says which lots and asks for a
  scan of the case; the scan (with its lot) then gives the definite verdict.
* Expiry: the item is good *through* its expiry date (GS1 AI 17), so expired
  means ``expiry < today`` and near expiry ``expiry - today <= near_expiry_days``.
  An expiry with an hour (GS1 AI 7003, HIBC ``YYMMDDHH``/``YYJJJHH``, a
  batch's ``expiry_hour``) is good until that hour and expired from it on, by
  the site's local clock, the same clock that gives "today"
  (``Observation.hour``).  When both the barcode and master data give an
  expiry, the earlier moment counts (a date without an hour ends at
  midnight); the barcode's hour goes with the barcode's date only.
* ``door.unknown_gtin`` is also the rule for an HIBC code or MA id that no
  product lists: the rule id is the one people, filters and reports already
  know, the message names the identifier that was read.
* No master data at all: no per-item alert (every case would alarm, and the
  cause is one missing document, not the goods); ``Knowledge.missing`` names
  what is missing so the app can show it once in its status.  No recall list
  likewise skips the recall checks.  Items naming no product (an SSCC pallet
  label, a GIAI, an HIBC secondary-data symbol with no primary) get no
  product checks.
* Time out of refrigeration (TOR): when the door's zone range is not inside
  the product's class range (2–8 °C product on a 15–25 °C dock), an inbound
  movement, an "unknown" one or a scan starts a clock for that key (the
  goods are on this dock; guessing "it left" would hide a real exposure).
  An outbound movement never starts one: the goods are leaving on a truck.
  The clock stops (and its alert, if any, clears) when the key leaves through
  any door ("out"), or is seen at a door whose zone fits its class.  Classes
  in FAH or KEL are converted to °C; an unknown zone class (None) or a
  product without a known class starts nothing.  The budget is the
  product's ``tor_budget_s`` when master data gives one (how long a product
  may be out of its class comes from its own stability data, which one door
  default cannot fit for every product), else the door's
  ``DoorPolicy.tor_budget_s``; it is looked up at each ``tick``, so a new
  master data or policy applies to clocks already running.
* One alert per (rule, key) while it is open (the dock then folds the items of
  one lot at one door into one alert per pallet: ``dock_alert_groups``): re-reads are silent; a more
  severe re-read at the same door (seen inbound, then outbound) *updates* the
  alert to the higher severity at once; a read at another door clears the
  alert at the old door and raises it at the new one (the stack light must
  be the one where the goods are).
* Every alert is cleared ``hold_s`` after its last step (raised/updated), so
  the stack light stops unless something new happens; the record keeps both
  steps.  A TOR alert still at warning is not cleared by the hold before its
  critical step, so one pass gives one alert that goes warning → critical.
* A new recall list or master data (``update``) re-judges the items still on
  the dock (last seen not leaving): the next ``tick`` raises what the new
  documents find and the old did not (a recall pushed while the pallet waits).

Bounded memory: at most ``max_tracked`` keys are remembered (least recently
seen evicted first, its TOR clock with it), and at most ``max_tracked`` alerts
are open (when full, the oldest is cleared early with a note, so every raised
alert still gets its clear).

The purity check (tests/test_rules_purity.py) allows neither ``datetime`` nor
``gateway.clock`` here and forbids the attribute name ``today`` (it hunts
clock reads), so dates are typed by ``dock_knowledge.DateLike`` and stamps by
``StampLike`` below, and
``Observation.today`` is read by ``_local_date``; the item fields are those of
``gateway.observations.stamp_fields``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from coldgate.contract.downlink import RecallEntry, RecallStatus
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType
from coldgate.gateway.observations import UNSEQUENCED
from coldgate.gateway.rules.dock_knowledge import DateLike, Knowledge
from coldgate.gateway.rules.timebase import Mark, elapsed_ms

RECALLED = "door.recalled"
QUARANTINED = "door.quarantined"
RECALL_UNRESOLVED = "door.recall_unresolved"
EXPIRED = "door.expired"
NEAR_EXPIRY = "door.near_expiry"
BEST_BEFORE_PASSED = "door.best_before_passed"
UNKNOWN_GTIN = "door.unknown_gtin"
TOR = "door.time_out_of_refrigeration"
RULES = (
    RECALLED,
    QUARANTINED,
    RECALL_UNRESOLVED,
    EXPIRED,
    NEAR_EXPIRY,
    BEST_BEFORE_PASSED,
    UNKNOWN_GTIN,
    TOR,
)

OUT = "out"
_RANK = (Severity.INFO, Severity.WARNING, Severity.CRITICAL)  # least to most severe
_LIST_MAX = 5  # lots named in a message before "and N more"
_DETAIL_MAX = 200


class StampLike(Protocol):
    """A ``gateway.clock.Stamp`` (structurally; ``gateway.clock`` may not be imported here)."""

    @property
    def wall_ms(self) -> int: ...

    @property
    def mono_ms(self) -> int: ...

    @property
    def boot(self) -> str: ...

    @property
    def synced(self) -> bool: ...


@dataclass(frozen=True)
class DoorPolicy:
    """How strict the door is; defaults fit a pharma warehouse with a 30-minute TOR allowance."""

    near_expiry_days: int = 30
    tor_budget_s: float = 1800.0  # time out of refrigeration allowed on an ambient dock
    hold_s: float = 600.0  # a door alert is cleared after this (the record stays: raised then cleared)
    tor_warn_at: float = 0.5  # fraction of the TOR budget at which the warning comes (>= 1: none)
    max_tracked: int = 10000  # keys remembered, and alerts open, at most


@dataclass(frozen=True)
class Observation:
    """One item seen at a door: an RFID movement (with direction) or a barcode scan (without)."""

    door: str  # door id (Id)
    zone_class: tuple[float, float] | None  # (low, high) °C of the door's zone temperature class
    direction: str | None  # "in" | "out" | "unknown" for RFID movements; None for a barcode scan
    key: str  # what identifies the physical item: EPC hex, or the scan's raw text
    gtin: str | None
    lot: str | None
    serial: str | None
    expiry: DateLike | None  # from the barcode if it carried one
    today: DateLike  # local date at the site, passed in
    hour: int | None = None  # local hour at the site (0-23) with ``today``; None: judged as 23, the safe side
    hibc: str | None = None  # HIBC labeler + product code, from a scan
    hibc_uom: int | None = None
    ma: str | None = None  # MA device identifier, from a scan
    expiry_hour: int | None = None  # hour of ``expiry`` the item expires at, from the barcode
    best_before: DateLike | None = None  # from the barcode (GS1 AI 15)


def _local_date(obs: Observation) -> DateLike:
    """``obs.today`` without the attribute name the purity check rejects; it is the caller's date."""
    return getattr(obs, "today")  # noqa: B009


@dataclass(frozen=True)
class _Finding:
    """What one rule found about one observation, before it becomes an alert step."""

    rule: str
    severity: Severity
    message: str
    details: dict[str, str]


def _severity(direction: str | None) -> Severity:
    """Critical only where the goods are leaving: that is where the harm is (see the table above)."""
    return Severity.CRITICAL if direction == OUT else Severity.WARNING


def _named(values: Iterable[str]) -> str:
    """``A, B, C`` (sorted, at most ``_LIST_MAX``): messages stay one readable line."""
    items = sorted(set(values))
    shown = ", ".join(items[:_LIST_MAX])
    return shown + (f" and {len(items) - _LIST_MAX} more" if len(items) > _LIST_MAX else "")


def _facts(obs: Observation, **more: str | None) -> dict[str, str]:
    """Evidence details as strings (the contract allows scalars; strings keep dates and ids exact)."""
    given = {
        "door": obs.door,
        "direction": obs.direction or "scan",
        "key": obs.key,
        "gtin": obs.gtin,
        "hibc": obs.hibc,
        "hibc_uom": None if obs.hibc_uom is None else str(obs.hibc_uom),
        "ma": obs.ma,
        "lot": obs.lot,
        "serial": obs.serial,
        **more,
    }
    return {k: v[:_DETAIL_MAX] for k, v in given.items() if v is not None}


def _label(obs: Observation) -> str | None:
    """The identifier the item was read by, for people: ``GTIN …``, ``HIBC …`` or ``MA …``."""
    if obs.gtin is not None:
        return f"GTIN {obs.gtin}"
    if obs.hibc is not None:
        return f"HIBC {obs.hibc}" + ("" if obs.hibc_uom is None else f"/{obs.hibc_uom}")
    if obs.ma is not None:
        return f"MA {obs.ma}"
    return None


def _recall_findings(
    obs: Observation, label: str, product: str | None, entries: Iterable[RecallEntry]
) -> list[_Finding]:
    """Definite matches per status, and entries that match unless an unknown lot/serial says otherwise."""
    definite: dict[RecallStatus, list[RecallEntry]] = {}
    unresolved: list[RecallEntry] = []
    for entry in entries:
        if entry.lot is not None and obs.lot is not None and entry.lot != obs.lot:
            continue
        if entry.serial is not None and obs.serial is not None and entry.serial != obs.serial:
            continue
        if (entry.lot is not None and obs.lot is None) or (entry.serial is not None and obs.serial is None):
            unresolved.append(entry)
        else:
            definite.setdefault(entry.status, []).append(entry)
    found: list[_Finding] = []
    for status, rule in ((RecallStatus.RECALLED, RECALLED), (RecallStatus.QUARANTINED, QUARANTINED)):
        hits = definite.get(status)
        if not hits:
            continue
        refs = _named(e.reference for e in hits)
        reason = next((e.reason for e in hits if e.reason), "")
        found.append(
            _Finding(
                rule,
                _severity(obs.direction),
                f"{status.value} item at door {obs.door}: {label}"
                + (f" lot {obs.lot}" if obs.lot else "")
                + f" ({refs}{': ' + reason if reason else ''})",
                _facts(obs, product=product, reference=refs, status=status.value, reason=reason or None),
            )
        )
    if unresolved and not definite:
        lots = [e.lot for e in unresolved if e.lot is not None]
        serials = [e.serial for e in unresolved if e.serial is not None]
        noun = "GTIN" if obs.gtin is not None else "product"
        what = []
        if lots and obs.lot is None:
            what.append(f"lot unknown; lots {_named(lots)} of this {noun} are")
        if serials and obs.serial is None:
            what.append(f"serial unknown; serials {_named(serials)} of this {noun} are")
        statuses = _named(e.status.value for e in unresolved)
        refs = _named(e.reference for e in unresolved)
        found.append(
            _Finding(
                RECALL_UNRESOLVED,
                Severity.WARNING,
                f"{label} at door {obs.door}: {' and '.join(what)} {statuses} ({refs}) — scan the case",
                _facts(
                    obs, product=product, reference=refs, status=statuses, recalled_lots=_named(lots) or None
                ),
            )
        )
    return found


_Expiry = tuple[DateLike, int | None]  # date, and the hour of it the item expires at (None: at its end)


def _moment(date: DateLike, hour: int | None) -> tuple[int, int]:
    """Sortable: an expiry without an hour lasts the whole day (hour 24 = the next midnight)."""
    return (date.toordinal(), 24 if hour is None else hour)


def _expiry(obs: Observation, knowledge: Knowledge, product: str | None) -> _Expiry | None:
    """The earlier of the barcode's expiry and the master data's expiry for the item's lot."""
    given: list[_Expiry] = []
    if obs.expiry is not None:
        given.append((obs.expiry, obs.expiry_hour))
    if product is not None:
        lot = (product, obs.lot or "")
        batch = knowledge.expiries.get(lot)
        if batch is not None:
            given.append((batch, knowledge.expiry_hours.get(lot)))
    return min(given, key=lambda e: _moment(*e)) if given else None


def _expired(expiry: DateLike, hour: int | None, obs: Observation) -> bool:
    """Good through the expiry date, or until the expiry hour of that date in the site's local time.

    Without the site's hour (``obs.hour`` None) an item expiring at some hour today counts as expired:
    a false alert at the door costs a look at the label, a missed one ships an expired device.
    """
    days_left = expiry.toordinal() - _local_date(obs).toordinal()
    if days_left != 0 or hour is None:
        return days_left < 0
    return (23 if obs.hour is None else obs.hour) >= hour


def product_findings(obs: Observation, knowledge: Knowledge, policy: DoorPolicy) -> list[_Finding]:
    """Everything the documents say against this item (TOR aside: that needs time)."""
    label = _label(obs)
    if label is None:
        return []
    product = knowledge.product_key(obs.gtin, obs.hibc, obs.hibc_uom, obs.ma)
    named = None if product is None or product == obs.gtin else product  # evidence: the key, if not the GTIN
    found = _recall_findings(obs, label, named, knowledge.recalls.get(product, ()) if product else ())
    if knowledge.has_master and (product is None or not knowledge.known(product, obs.gtin)):
        found.append(
            _Finding(
                UNKNOWN_GTIN,
                Severity.WARNING,
                f"{label} at door {obs.door} is not in the master data",
                _facts(obs),
            )
        )
    expiry = _expiry(obs, knowledge, product)
    expired = False
    if expiry is not None:
        date, hour = expiry
        shown = date.isoformat() + ("" if hour is None else f" {hour:02d}:00")
        days_left = date.toordinal() - _local_date(obs).toordinal()
        facts = _facts(obs, product=named, expiry=shown, today=_local_date(obs).isoformat())
        expired = _expired(date, hour, obs)
        if expired:
            found.append(
                _Finding(
                    EXPIRED,
                    _severity(obs.direction),
                    f"expired item at door {obs.door}: {label} lot {obs.lot or '?'} expired {shown}",
                    facts,
                )
            )
        elif days_left <= policy.near_expiry_days:
            found.append(
                _Finding(
                    NEAR_EXPIRY,
                    Severity.WARNING,
                    f"item near expiry at door {obs.door}: {label} lot {obs.lot or '?'} "
                    f"expires {shown} ({days_left} days)",
                    facts,
                )
            )
    found.extend(_best_before(obs, label, named, expired))
    return found


def _best_before(obs: Observation, label: str, named: str | None, expired: bool) -> list[_Finding]:
    """A best-before date (GS1 AI 15) in the past: a warning, in either direction, never critical.

    Best-before is the end of the maker's *quality* promise, not of safe use (that is the expiry
    date, AI 17): a unit past it may still be used or shipped under the distributor's own rules, so
    the door must say so but must not stop the dock the way an expired or recalled unit does.  Not
    raised for an item already expired: that alert says more, and one is enough to act on.
    """
    if obs.best_before is None or expired:
        return []
    days = obs.best_before.toordinal() - _local_date(obs).toordinal()
    if days >= 0:
        return []
    shown = obs.best_before.isoformat()
    return [
        _Finding(
            BEST_BEFORE_PASSED,
            Severity.WARNING,
            f"best-before date passed at door {obs.door}: {label} lot {obs.lot or '?'} best before {shown}",
            _facts(obs, product=named, best_before=shown, today=_local_date(obs).isoformat()),
        )
    ]


def fits(zone: tuple[float, float], klass: tuple[float, float]) -> bool:
    """True when the whole zone range lies inside the product's class range."""
    return klass[0] <= zone[0] and zone[1] <= klass[1]


def _mark(stamp: StampLike) -> Mark:
    return Mark(ts=stamp.wall_ms, boot=stamp.boot, mono=stamp.mono_ms)


@dataclass
class _Clock:
    """A running time-out-of-refrigeration clock for one key."""

    start: Mark
    obs: Observation
    klass: tuple[float, float]
    product: str  # its key: the product's own TOR budget is looked up by it at each tick
    stage: int = 0  # 0: quiet, 1: warning raised, 2: critical raised, 3: done for this pass


@dataclass
class _Open:
    """An alert that has been raised and not yet cleared."""

    alert_id: str
    rule: str
    key: str
    door: str
    severity: Severity
    message: str
    details: dict[str, str]
    start: Mark
    last: Mark  # of the last step (raised/updated): the hold runs from here


@dataclass
class _Item:
    """What is remembered of a key: its last observation and TOR clock."""

    last: Observation
    clock: _Clock | None = None


class DoorChecks:
    """Door-alert state for one gateway; ``observe``/``tick`` return the alert steps to record."""

    def __init__(self, policy: DoorPolicy, knowledge: Knowledge) -> None:
        self.policy = policy
        self.knowledge = knowledge
        self._items: OrderedDict[str, _Item] = OrderedDict()
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()
        self._pending: dict[tuple[str, str], tuple[Observation, _Finding]] = {}
        self._serial = 0
        self.evicted = 0

    # -- documents -------------------------------------------------------------------------------

    def update(self, knowledge: Knowledge) -> None:
        """Take new documents; what they newly find about goods still on the dock comes at ``tick``."""
        old, self.knowledge = self.knowledge, knowledge
        for item in self._items.values():
            obs = item.last
            if obs.direction == OUT:
                continue
            before = {f.rule for f in product_findings(obs, old, self.policy)}
            for finding in product_findings(obs, knowledge, self.policy):
                if finding.rule not in before:
                    self._pending[(finding.rule, obs.key)] = (obs, finding)

    # -- observations ----------------------------------------------------------------------------

    def observe(self, obs: Observation, stamp: StampLike) -> list[Alert]:
        """Judge one item seen at a door; the alert steps it causes, stamped with ``stamp``."""
        now = _mark(stamp)
        out: list[Alert] = []
        for finding in product_findings(obs, self.knowledge, self.policy):
            out.extend(self._report(obs, finding, now, stamp))
        out.extend(self._track(obs, now, stamp))
        return out

    def _track(self, obs: Observation, now: Mark, stamp: StampLike) -> list[Alert]:
        """Remember the key and start or stop its TOR clock."""
        item = self._items.pop(obs.key, None)
        clock = item.clock if item is not None else None
        product = self.knowledge.product_key(obs.gtin, obs.hibc, obs.hibc_uom, obs.ma)
        klass = self.knowledge.classes.get(product) if product is not None else None
        out: list[Alert] = []
        if clock is not None:
            leaving = obs.direction == OUT
            if leaving or (obs.zone_class is not None and fits(obs.zone_class, clock.klass)):
                why = "left through" if leaving else "reached a fitting zone at"
                out.extend(self._stop_clock(clock, now, stamp, f"{why} door {obs.door}"))
                clock = None
        elif obs.direction != OUT and klass is not None and obs.zone_class is not None:
            if not fits(obs.zone_class, klass):
                clock = _Clock(start=now, obs=obs, klass=klass, product=product or "")
        self._items[obs.key] = _Item(last=obs, clock=clock)
        while len(self._items) > max(1, self.policy.max_tracked):
            self._items.popitem(last=False)
            self.evicted += 1
        return out

    def _stop_clock(self, clock: _Clock, now: Mark, stamp: StampLike, why: str) -> list[Alert]:
        opened = self._open.pop((TOR, clock.obs.key), None)
        if opened is None:
            return []
        spent = elapsed_ms(clock.start, now) // 1000
        text = f"time out of refrigeration ended after {spent} s: {why}"
        return [self._alert(opened, AlertAction.CLEARED, opened.severity, text, stamp, now, spent)]

    # -- time --------------------------------------------------------------------------------------

    def tick(self, stamp: StampLike) -> list[Alert]:
        """Raise what updated documents found, advance TOR clocks, and clear alerts past their hold."""
        now = _mark(stamp)
        out: list[Alert] = []
        pending, self._pending = self._pending, {}
        for obs, finding in pending.values():
            out.extend(self._report(obs, finding, now, stamp))
        for item in self._items.values():
            clock = item.clock
            if clock is None or clock.stage == 3:
                continue
            budget_ms = self._budget_s(clock) * 1000
            spent = elapsed_ms(clock.start, now)
            if spent >= budget_ms and clock.stage < 2:
                out.extend(self._tor_step(clock, Severity.CRITICAL, spent, now, stamp))
                clock.stage = 2
            elif spent >= budget_ms * self.policy.tor_warn_at and clock.stage < 1:
                out.extend(self._tor_step(clock, Severity.WARNING, spent, now, stamp))
                clock.stage = 1
        hold_ms = self.policy.hold_s * 1000
        for ident, opened in list(self._open.items()):
            if opened.rule == TOR:
                item = self._items.get(opened.key)
                if item is not None and item.clock is not None and item.clock.stage == 1:
                    continue  # warning → critical is one alert; the hold starts at its critical step
            if elapsed_ms(opened.last, now) >= hold_ms:
                del self._open[ident]
                if opened.rule == TOR and (item := self._items.get(opened.key)) and item.clock:
                    item.clock.stage = 3
                text = f"{opened.message} (held {self.policy.hold_s:g} s, cleared)"
                out.append(self._alert(opened, AlertAction.CLEARED, opened.severity, text, stamp, now))
        return out

    def _budget_s(self, clock: _Clock) -> float:
        """The product's own TOR budget where master data gives one, else the door's."""
        return float(self.knowledge.tor_budgets.get(clock.product, self.policy.tor_budget_s))

    def _tor_step(
        self, clock: _Clock, severity: Severity, spent_ms: int, now: Mark, stamp: StampLike
    ) -> list[Alert]:
        obs = clock.obs
        low, high = clock.klass
        budget_s = self._budget_s(clock)
        text = (
            f"{_label(obs) or clock.product} out of its {low:g}..{high:g} °C class at door {obs.door} for "
            f"{spent_ms // 1000} s of a {budget_s:g} s budget"
        )
        zone = obs.zone_class or (0.0, 0.0)
        finding = _Finding(
            TOR,
            severity,
            text,
            _facts(
                obs,
                product_class=f"{low:g}..{high:g}",
                zone_class=f"{zone[0]:g}..{zone[1]:g}",
                budget_s=f"{budget_s:g}",
            ),
        )
        return self._report(obs, finding, now, stamp, start=clock.start, duration_s=spent_ms // 1000)

    # -- alert bookkeeping -------------------------------------------------------------------------

    def _report(
        self,
        obs: Observation,
        finding: _Finding,
        now: Mark,
        stamp: StampLike,
        start: Mark | None = None,
        duration_s: int | None = None,
    ) -> list[Alert]:
        """Raise, escalate, move or suppress: at most one open alert per (rule, key)."""
        ident = (finding.rule, obs.key)
        opened = self._open.get(ident)
        out: list[Alert] = []
        if opened is not None:
            if opened.door == obs.door:
                if _RANK.index(finding.severity) <= _RANK.index(opened.severity):
                    return []
                opened.severity, opened.message, opened.details = (
                    finding.severity,
                    finding.message,
                    finding.details,
                )
                opened.last = now
                self._open.move_to_end(ident)
                return [
                    self._alert(
                        opened, AlertAction.UPDATED, finding.severity, finding.message, stamp, now, duration_s
                    )
                ]
            del self._open[ident]
            text = f"{opened.message} (now seen at door {obs.door})"
            out.append(self._alert(opened, AlertAction.CLEARED, opened.severity, text, stamp, now))
        while self._open and len(self._open) >= max(1, self.policy.max_tracked):
            _, oldest = self._open.popitem(last=False)
            text = f"{oldest.message} (cleared early: too many open door alerts)"
            out.append(self._alert(oldest, AlertAction.CLEARED, oldest.severity, text, stamp, now))
        self._serial += 1
        opened = _Open(
            alert_id=self._alert_id(finding.rule, obs, now),
            rule=finding.rule,
            key=obs.key,
            door=obs.door,
            severity=finding.severity,
            message=finding.message,
            details=finding.details,
            start=start or now,
            last=now,
        )
        self._open[ident] = opened
        out.append(
            self._alert(opened, AlertAction.RAISED, finding.severity, finding.message, stamp, now, duration_s)
        )
        return out

    def _alert_id(self, rule: str, obs: Observation, now: Mark) -> str:
        """``<rule>.<10 hex>``: unique per raise (boot, monotonic time and a counter are hashed in)."""
        text = "\x1f".join((rule, obs.key, obs.door, now.boot, str(now.mono), str(now.ts), str(self._serial)))
        return f"{rule}.{hashlib.blake2b(text.encode(), digest_size=5).hexdigest()}"

    def _alert(
        self,
        opened: _Open,
        action: AlertAction,
        severity: Severity,
        message: str,
        stamp: StampLike,
        now: Mark,
        duration_s: int | None = None,
    ) -> Alert:
        """The contract item; the common fields are ``gateway.observations.stamp_fields(stamp)``."""
        start = opened.start.ts
        end = max(start, now.ts) if action is AlertAction.CLEARED else None
        if duration_s is None and action is AlertAction.CLEARED:
            duration_s = elapsed_ms(opened.start, now) // 1000
        return Alert(
            seq=UNSEQUENCED,
            ts=stamp.wall_ms,
            boot=stamp.boot,
            mono=stamp.mono_ms,
            synced=stamp.synced,
            alert_id=opened.alert_id,
            action=action,
            rule=opened.rule,
            subject_type=SubjectType.DOOR,
            subject=opened.door,
            severity=severity,
            message=message[:1000],
            evidence=Evidence(start=start, end=end, duration_s=duration_s, details=dict(opened.details)),
        )

    # -- status ------------------------------------------------------------------------------------

    def open_alerts(self) -> list[tuple[str, str, str]]:
        """(alert_id, rule, door) of every open door alert, oldest first."""
        return [(o.alert_id, o.rule, o.door) for o in self._open.values()]

    def clocks(self) -> dict[str, int]:
        """Keys with a running TOR clock and when it started (wall ms), for the app's status page."""
        return {k: i.clock.start.ts for k, i in self._items.items() if i.clock is not None}
