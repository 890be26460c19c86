"""The demo's dock: a receiving note, a pallet through the portal, a completed receipt (issue 15); then
a dispatch picked at the door (``demo_dispatch``), the lot's history, the room's record and a recall.

- The site has dock door DOCK-1 between the yard and cold room A, with a Pi of its own
  (``DOCK_GATEWAY``): the simulator's LLRP reader (``simulator.llrp``) on loopback is read through the
  gateway's real LLRP source, as at a real door (portal rules, door checks, movements through the
  outbox and MQTT), beside a picking scanner and the door's stack light.
- The QA manager's catalog gets the door, the yard, the reader's placement at the door, and the
  serials of the vaccine lot on the pallet, so each case's SGTIN tag resolves to its lot.
- Dominik, the dock operator, makes receiving note ASN-4711 (24 serialised cases of VAX-10 lot
  L2026-10 on one SSCC pallet) and releases it to DOCK-1.  At scenario time ``ARRIVAL_S`` (once the
  gateway holds the cloud's master data) the truck is there: he starts the receipt and the pallet
  is driven through the portal, inbound, as fast as a pallet moves (a few seconds, whatever
  ``--speed``).
- The cloud binds each movement to the note (its scheduler's ``bind-items`` job); the demo prints
  the note's reconciliation as the cloud stores it, and once it is complete and the pallet is put
  away (``PUT_AWAY_S`` of scenario time later), Dominik completes the receipt.  A refusal (an open
  discrepancy) is printed as the cloud gives it, and the receipt stays in progress.  At the default
  ``--speed 60`` the pallet passes about 15 s after the start and the dock page shows the note filled
  for 15 s before it is completed.
- The later beats come at fixed scenario times (``DISPATCH_AT_S``, ``HISTORY_AT_S``, ``RECALL_AT_S``),
  each after the one before, so the story has the same order and pace at every ``--speed``.

Every write goes through the same audited functions the API calls.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from coldgate.demo_dispatch import RECALLED_LOT, SCANNER, DemoDispatch, scanner_config
from coldgate.demo_dispatch import REFERENCE as DISPATCH_REFERENCE
from coldgate.demo_people import actor, hhmm, reconciliation, wait
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.pallet_at_the_door import PalletAtTheDoor
from coldgate.simulator.rfid_scenarios import Read, pallet_pass, sscc96_hex

__all__ = ["DOCK_GATEWAY", "DOOR", "LOT", "PRODUCT", "DemoDock", "dock_gateway_config"]

DOOR, READER = "DOCK-1", "dock1-r1"
#: (id, name, kind, class) of the door's two sides; the inside is one of the demo's cold rooms.
YARD = ("YARD", "Yard", "ambient_store", "15-25C")
INSIDE = "CR-A"
#: The receipt: VAX-10 (GTIN 04006381333931: company prefix 4006381, indicator and item 033393).
PRODUCT, LOT, COMPANY, ITEM = "VAX-10", "L2026-10", "4006381", "033393"
CASES, FIRST_SERIAL, PALLET_REF = 24, 1001, "0000004711"
REFERENCE, PARTY = "ASN-4711", "Vaxo Pharma GmbH, Marburg"
#: Scenario seconds: the truck arrives at 00:15; the pallet is put away 15 minutes after its note is
#: reconciled, and only then is the receipt completed (meanwhile the dock page shows the note filled).
ARRIVAL_S = 900.0
PUT_AWAY_S = 900.0
#: Real seconds after the last read with the note still incomplete before Dominik tries anyway.
SETTLE_S = 20.0
#: Scenario seconds of the later beats (each also waits for the one before): the dispatch picked at
#: 01:45, the lot's history and the room's record at 02:15, the recall at 02:30; at the default
#: ``--speed 60`` the story is told in about three minutes.
DISPATCH_AT_S, HISTORY_AT_S, RECALL_AT_S = 6300.0, 8100.0, 9000.0
#: The dock door's own gateway: one Pi per door, as at a real site, so its stack light is its own.
DOCK_GATEWAY = "demo-gw-dock"


def dock_gateway_config(
    data_dir: Path, site: str, broker_url: str, protocol: str, reader_port: int, scanner_device: str,
    relay_port: int, classes: list[dict[str, Any]],
) -> GatewayConfig:  # fmt: skip
    """The gateway.toml of the dock door's Pi: the portal's LLRP reader (antenna 1 faces the yard, 2
    the cold room), the picking scanner, and the stack light on coil 0 of its relay board, lit by what
    is critical (a recalled or quarantined case leaving).  ``classes``: the cold-room gateway's, until
    the cloud's master data replaces them."""
    document: dict[str, Any] = {
        "gateway": {"id": DOCK_GATEWAY, "site": site, "data_dir": str(data_dir)},
        "modbus_lines": [
            {"id": "stack-light", "transport": "tcp", "host": "127.0.0.1", "port": relay_port,
             "timeout_s": 0.5}
        ],
        "temperature_classes": classes,
        "readers": [{"id": READER, "host": "127.0.0.1", "port": reader_port, "door": DOOR,
                     "outside_antennas": [1], "inside_antennas": [2], "keepalive_s": 5}],
        "scanners": [scanner_config(scanner_device, DOOR)],
        "alarm": {"min_severity": "critical", "relay": {"line": "stack-light", "unit": 1, "coil": 0}},
        "uplink": {"broker": broker_url, "protocol": protocol, "heartbeat_s": 10, "ack_timeout_s": 10},
    }  # fmt: skip
    return gateway_config_from_document(document, "demo-dock")


def pallet_reads() -> list[Read]:
    """The pallet driven in: 24 case tags and the pallet's SSCC tag (seeded: the same every run)."""
    return pallet_pass(
        "in", cases=CASES, company_prefix=COMPANY, item_ref=ITEM, first_serial=FIRST_SERIAL,
        pallet_serial_ref=PALLET_REF, speed_m_s=2.0, seed=15,
    )  # fmt: skip


class DemoDock:
    """The dock's part of the demo: catalog, note, pallet, reconciliation, completion."""

    def __init__(
        self, cloud: Any, gateway: str, site: str, dispatch: DemoDispatch | None = None,
        lit: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        self.cloud, self.gateway, self.site = cloud, gateway, site
        self.dispatch, self.lit = dispatch, lit
        self.pallet = PalletAtTheDoor(pallet_reads())
        self.sscc = decode_epc(sscc96_hex(COMPANY, PALLET_REF)).sscc
        self.document = ""
        self.outcome = ""  # "completed", "refused" or "" (not tried yet)
        self.done = False  # every beat told

    # ---- set-up, in the cloud's writer
    def catalog(self, conn: Any, now: datetime.datetime) -> None:
        """The QA manager's part: the yard, the door, the reader placed at it, the lot's serials."""
        from coldgate.cloud.catalog.locations import put_location
        from coldgate.cloud.catalog.placements import place
        from coldgate.cloud.catalog.serials import add_serials

        marta = actor(conn, "qa_manager")
        key, name, kind, klass = YARD
        yard = {"name": name, "kind": kind, "temperature_class": klass}
        put_location(conn, self.site, key, yard, reason="site survey", by=marta, now=now)
        door = {"name": "Dock door 1", "kind": "dock_door", "inside": INSIDE, "outside": key}
        put_location(conn, self.site, DOOR, door, reason="site survey", by=marta, now=now)
        since = int(now.timestamp() * 1000) - 86_400_000
        place(conn, self.gateway, "reader", READER, DOOR, since, reason="portal installed", by=marta, now=now)
        if self.dispatch is not None:
            place(conn, self.gateway, "scanner", SCANNER, DOOR, since, reason="picking scanner installed",
                  by=marta, now=now)  # fmt: skip
        last = FIRST_SERIAL + CASES - 1
        add_serials(conn, PRODUCT, LOT, [], [(str(FIRST_SERIAL), str(last))], reason=f"{REFERENCE} serials",
                    by=marta, now=now)  # fmt: skip

    def receiving_note(self) -> None:
        """Dominik makes the note and releases it to the door (as POST /documents and .../release)."""
        from coldgate.cloud.documents.documents import create_document
        from coldgate.cloud.documents.moves import move_document

        now = datetime.datetime.now(datetime.UTC)
        line = {"product": PRODUCT, "lot": LOT, "quantity": CASES, "unit": "case", "ssccs": [self.sscc],
                "serials": [str(FIRST_SERIAL + n) for n in range(CASES)]}  # fmt: skip
        fields = {"kind": "receiving", "site": self.site, "reference": REFERENCE, "party": PARTY,
                  "lines": [line]}  # fmt: skip
        with self.cloud.writer_engine.begin() as conn:
            dominik = actor(conn, "dock_operator")
            made = create_document(conn, fields, reason="ship notice received", by=dominik, now=now)
            self.document = str(made["id"])
            move_document(conn, self.document, "released", door=DOOR, reason="truck booked for door 1",
                          by=dominik, now=now)  # fmt: skip
        if self.dispatch is not None:
            self.dispatch.make_order()

    def announce(self, reader_port: int, scanner_device: str | None = None) -> None:
        api = self.cloud.api_url
        click.echo(
            f"Dock: door {DOOR} (Yard -> Cold room A), LLRP reader {READER} on 127.0.0.1:{reader_port}; "
            f"receiving note {REFERENCE} ({CASES} cases of {PRODUCT} lot {LOT} on pallet SSCC {self.sscc}) "
            f"made and released to {DOOR} by dominik; the truck arrives at scenario {hhmm(ARRIVAL_S)}"
        )
        click.echo(f"  watch the door: {api}/dashboard/dock/{self.site}/{DOOR}")
        click.echo(f"  the note: {api}/dashboard/documents/{self.document}")
        if self.dispatch is not None and scanner_device is not None:
            click.echo(
                f"  picking scanner {SCANNER} on {scanner_device}; dispatch order {DISPATCH_REFERENCE} made "
                f"by dominik, picked at scenario {hhmm(DISPATCH_AT_S)}: {self.dispatch.page()}"
            )

    # ---- the story, while the site runs
    async def run(
        self,
        scenario_now: Callable[[], float],
        ready: Callable[[], bool],
        stop: asyncio.Event,
        interval: float,
        tell: Callable[[str], None] = lambda text: None,
    ) -> None:
        """The dock's beats at their scenario times, each after the one before: the pallet in at
        ``ARRIVAL_S`` once ``ready()`` (the dock's gateway holds master data), the receipt reconciled and
        completed; the dispatch picked at ``DISPATCH_AT_S``; the lot's history and the room's monthly
        record at ``HISTORY_AT_S``; the recall at ``RECALL_AT_S``.  ``tell``: the narrator's chapters
        (``--story``).  Returns early on ``stop``."""
        if not await self._until(scenario_now, ARRIVAL_S, stop, ready):
            return
        tell(
            f"A truck is at {DOOR} with {REFERENCE}: a pallet of {CASES} vaccine cases. The portal reads "
            "every case tag as the pallet passes; the cloud binds each read to the note (TOUR 3 and 4)."
        )
        if not await self._receive(scenario_now, stop, interval):
            return
        if self.outcome == "completed":
            tell(
                f"{REFERENCE} is complete: every case accounted for (EPCIS completeness_verified), so "
                "dominik could sign it off; each case's custody in cold room A begins with the receipt."
            )
        else:
            tell(f"{REFERENCE} stays in progress: the cloud named what is missing or foreign (DOCK lines).")
        if self.dispatch is not None:
            if not await self._until(scenario_now, DISPATCH_AT_S, stop):
                return
            tell(
                f"Picking order {DISPATCH_REFERENCE} at {DOOR}. The picker takes an insulin case of lot "
                f"{RECALLED_LOT[1]}, recalled before the day began. Watch the stack light (TOUR 3 and 5)."
            )
            await self.dispatch.run(scenario_now, self.lit, stop)
        if not await self._until(scenario_now, HISTORY_AT_S, stop):
            return
        tell(
            f"The recall team's view of lot {LOT}: where it was, what the sensors there recorded, any "
            "time not monitored, as a page, PDF, CSV and EPCIS 2.0 (TOUR 6); and QA's monthly record of the "
            "room, kept with its hash (TOUR 8)."
        )
        now = datetime.datetime.now(datetime.UTC)
        await asyncio.to_thread(self._history, now)
        await asyncio.to_thread(self._report, now)
        if not await self._until(scenario_now, RECALL_AT_S, stop):
            return
        tell(
            f"The supplier reports a faulty seal: rico recalls lot {LOT}. The run names whom to tell and "
            "the stock to block, and the lot goes on every gateway's recall list (TOUR 7)."
        )
        await asyncio.to_thread(self._recall, datetime.datetime.now(datetime.UTC))
        self.done = True

    async def _until(
        self, scenario_now: Callable[[], float], at_s: float, stop: asyncio.Event,
        ready: Callable[[], bool] = lambda: True,
    ) -> bool:  # fmt: skip
        """Wait for scenario time ``at_s`` (and ``ready()``); False if ``stop`` came first."""
        while not (scenario_now() >= at_s and ready()):
            if await wait(stop, 0.2):
                return False
        return True

    async def _receive(self, scenario_now: Callable[[], float], stop: asyncio.Event, interval: float) -> bool:
        """The pallet in, the reconciliation as the cloud stores it, the receipt completed once the
        pallet is put away; False if ``stop`` came first."""
        await asyncio.to_thread(self._move, "in_progress", "truck at door 1, unloading")
        self.pallet.drive()
        arrived = scenario_now()
        click.echo(
            f"  DOCK  {hhmm(arrived)} pallet SSCC {self.sscc} passes {DOOR} inbound ({CASES} cases); "
            f"dominik starts {REFERENCE}"
        )
        pass_s = (self.pallet.reads[-1][0] - self.pallet.reads[0][0]) / 1000 if self.pallet.reads else 0.0
        loop = asyncio.get_running_loop()
        give_up = loop.time() + pass_s + SETTLE_S
        shown, rec = "", await asyncio.to_thread(self._reconciliation)
        while not rec.complete:  # the cases bind a few seconds after the pallet passed
            counted = ", ".join(f"line {x.number}: {x.seen} of {x.expected}" for x in rec.lines)
            if counted != shown:
                shown = counted
                click.echo(f"  DOCK  {REFERENCE} bound so far: {counted} {rec.lines[0].unit}s")
            if loop.time() > give_up:
                break  # a case was not read, or did not bind: Dominik tries, and the cloud says why not
            if await wait(stop, interval):
                return False
            rec = await asyncio.to_thread(self._reconciliation)
        self._print(rec)
        if rec.complete and not await self._until(scenario_now, scenario_now() + PUT_AWAY_S, stop):
            return False  # the pallet goes into the cold room before the receipt is completed
        await asyncio.to_thread(self._complete)
        api = self.cloud.api_url
        click.echo(f"  DOCK  the receipt: {api}/dashboard/documents/{self.document}")
        click.echo(f"  DOCK  the door:    {api}/dashboard/dock/{self.site}/{DOOR}")
        click.echo(f"  DOCK  the lot:     {api}/dashboard/lots/{PRODUCT}/{LOT}/custody  (every case's stays)")
        return True

    def _history(self, now: datetime.datetime) -> None:
        """The lot's environmental history so far, as a recall team would pull it (issue 17)."""
        from coldgate.cloud.reports.history_store import lot_history
        from coldgate.cloud.time_text import duration

        with self.cloud.reader_engine.connect() as conn:
            found = lot_history(conn, PRODUCT, LOT, as_of=int(now.timestamp() * 1000))
        t = found.totals
        ours = [s for s in found.segments if s.custody == "ours"]
        rooms = ", ".join(f"{s.location} ({len(s.sensors)} sensors)" for s in ours)
        mkt = "no readings yet" if t.mkt is None else f"MKT {t.mkt:.2f} °C"
        click.echo(
            f"  HISTORY lot {LOT}: {len(found.segments)} segments, in {rooms or 'none of our rooms'}; "
            f"{t.readings} readings, {mkt}, out of range {duration(t.out_of_range_ms // 1000, brief=True)}, "
            f"not monitored {duration(t.unmonitored_ms // 1000, brief=True)}, excursions: {t.excursions}"
        )
        api = self.cloud.api_url
        page = f"{api}/dashboard/lots/{PRODUCT}/{LOT}/history"
        click.echo(f"  HISTORY {page}  (PDF, CSV and EPCIS 2.0 from there)")

    def _report(self, now: datetime.datetime) -> None:
        """QA prints the month's GSP record of the room the lot went into, kept with its hash (issue 17)."""
        from coldgate.cloud.reports.periodic_store import generate_monthly

        with self.cloud.writer_engine.begin() as conn:
            made = generate_monthly(conn, self.site, INSIDE, f"{now:%Y-%m}", "pdf", by=actor(conn, "qa"),
                                    now=now)  # fmt: skip
        click.echo(
            f"  REPORT {made['id']}: monthly record of {INSIDE} for {now:%Y-%m} so far, {made['size']} "
            f"bytes, SHA-256 {made['sha256'][:16]}…: {self.cloud.api_url}/dashboard/reports"
        )

    def _recall(self, now: datetime.datetime) -> None:
        """Rico recalls the lot just received (issue 17): the run names whom to tell and what to block,
        and the gateways get the lot on their list."""
        from coldgate.cloud.identity.roles import permissions
        from coldgate.cloud.reports.recall_store import open_recall

        with self.cloud.writer_engine.begin() as conn:
            run = open_recall(
                conn, recall_class="II", reason="FSN-DEMO: supplier reports a faulty seal on this lot",
                lots=[(PRODUCT, LOT)], by=actor(conn, "recall_coordinator"),
                held=permissions({"recall_coordinator"}), now=now,
            )  # fmt: skip
        if self.cloud.downlink is not None:
            self.cloud.downlink.nudge()
        stock = "; ".join(f"{x['location']} {x['pallets']} pallet(s) {x['cases']} cases"
                          for x in run["stock"])  # fmt: skip
        told = len(run["customers"])
        click.echo(
            f"  RECALL {run['id']} class II by rico: lot {LOT} recalled, {told} customers to tell (nothing "
            f"dispatched), stock to block: {stock or 'none'}"
        )
        click.echo(f"  RECALL {self.cloud.api_url}/dashboard/recalls/{run['id']}")

    def _move(self, state: str, reason: str) -> None:
        from coldgate.cloud.documents.moves import move_document

        with self.cloud.writer_engine.begin() as conn:
            now = datetime.datetime.now(datetime.UTC)
            move_document(conn, self.document, state, reason=reason, by=actor(conn, "dock_operator"), now=now)

    def _reconciliation(self) -> Any:
        return reconciliation(self.cloud, self.document)

    def _print(self, rec: Any) -> None:
        verdict = "complete" if rec.complete else "NOT complete"
        click.echo(
            f"  DOCK  {rec.reference} reconciled in the cloud: {verdict} ({rec.completeness or 'no word'}), "
            f"{rec.seen} of {rec.expected} expected, {rec.units_seen} units bound, "
            f"{rec.duplicates} duplicate sightings"
        )
        for x in rec.lines:
            lot = f" lot {x.lot}" if x.lot else ""
            count = f"{x.seen}/{x.expected} {x.unit}s"
            click.echo(f"    line {x.number} {x.product}{lot}: {count} {x.state} {x.cbv or ''}".rstrip())
        for d in rec.discrepancies:
            click.echo(f"    {d.kind} ({d.cbv or 'no CBV word'}): {d.detail}")

    def _complete(self) -> None:
        from coldgate.cloud.identity.users import UserInputError

        reason = f"{REFERENCE}: pallet {self.sscc} received and put away in cold room A"
        try:
            self._move("completed", reason)
        except UserInputError as exc:  # a Conflict too: open discrepancies keep it in progress
            self.outcome = "refused"
            click.echo(f"  DOCK  completing {REFERENCE} refused: {exc}")
            return
        self.outcome = "completed"
        click.echo(f"  DOCK  {REFERENCE} completed by dominik ({reason})")
