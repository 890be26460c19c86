"""The demo's dispatch: an order picked by scanning at the dock door, and a recalled case stopped there.

- The dock door's own gateway (``demo_dock.dock_gateway_config``) has a picking scanner at DOCK-1 on
  a pseudo-terminal (``simulator.scanner.ScannerEmulator``, as a USB scanner in CDC mode) and the
  door's stack light on a relay board of its own, so the light is told apart from the cold rooms'
  siren.
- Dominik's dispatch order SO-0815 to a hospital pharmacy asks for two cases of insulin pens (INS-3,
  kept at 2-8 °C like the cold room behind the door), the lot left open until picked.  He releases it
  to DOCK-1 and the picker scans the GS1 DataMatrix of each case he took from the shelves: one of lot
  L2026-11, then one of lot L2026-08, which the recall coordinator recalled (FSN-2026-12) before the
  demo began.
- The gateway's door check finds the lot on the recall list the cloud pushed down and raises a
  critical ``door.recalled`` alert: the stack light comes on at the door, with or without the
  internet.  The cloud binds both scans to the order; its reconciliation names the recalled case
  and the order cannot be completed.  The demo prints each step as the parts report it.

The codes are built here, not taken from ``simulator.scanner.CODES``, because they must name the
demo's own product and lots (GS1 DataMatrix with the lot last, so no group separator is needed).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any

import click

from coldgate.demo_people import actor, hhmm, reconciliation, wait_for
from coldgate.simulator.scanner import ScannerEmulator

__all__ = ["RECALLED_LOT", "REFERENCE", "SCANNER", "DemoDispatch", "scanner_config"]

SCANNER = "dock1-s1"
REFERENCE, PARTY = "SO-0815", "Klinikum Nord, hospital pharmacy"
#: The recalled lot the picker takes by mistake (recalled in the demo's master data, ``DEMO_RECALL``).
RECALLED_LOT = ("INS-3", "L2026-08")
#: What the picker scans, in order: (what it is, the bytes the scanner sends): AIM ]d2, GTIN, expiry, lot.
PICKED: tuple[tuple[str, bytes], ...] = (
    ("a case of INS-3 lot L2026-11", b"]d2" + b"0180614141123458" + b"17271130" + b"10L2026-11"),
    ("a case of INS-3 lot L2026-08", b"]d2" + b"0180614141123458" + b"17270831" + b"10L2026-08"),
)
#: Real seconds to wait for the stack light and the cloud's word before the demo says it did not come.
WAIT_S = 30.0


def scanner_config(device: str, door: str) -> dict[str, Any]:
    """The ``[[scanners]]`` table of the dock gateway: a picking scanner (``outbound``): what it scans
    is judged as goods leaving through the door, so a recalled lot is critical and lights the stack."""
    return {"id": SCANNER, "port": device, "door": door, "reopen_s": 0.5, "outbound": True}


class DemoDispatch:
    """The order, its picking at the door, and what the door and the cloud make of it."""

    def __init__(self, cloud: Any, site: str, door: str, scanner: ScannerEmulator) -> None:
        self.cloud, self.site, self.door, self.scanner = cloud, site, door, scanner
        self.document = ""
        self.refused = False  # the door stopped the recalled case (stack light on)

    def make_order(self) -> None:
        """Dominik enters the order (as POST /documents); it is released to the door when picking starts."""
        from coldgate.cloud.documents.documents import create_document

        now = datetime.datetime.now(datetime.UTC)
        lines = [{"product": RECALLED_LOT[0], "quantity": len(PICKED), "unit": "case"}]
        fields = {
            "kind": "dispatch",
            "site": self.site,
            "reference": REFERENCE,
            "party": PARTY,
            "lines": lines,
        }
        with self.cloud.writer_engine.begin() as conn:
            made = create_document(
                conn, fields, reason="customer order", by=actor(conn, "dock_operator"), now=now
            )
        self.document = str(made["id"])

    def page(self) -> str:
        return f"{self.cloud.api_url}/dashboard/documents/{self.document}"

    async def run(
        self, scenario_now: Callable[[], float], lit: Callable[[], bool], stop: asyncio.Event
    ) -> None:
        """Release, pick by scanning, and print what the door and the cloud say."""

        await asyncio.to_thread(self._release)
        click.echo(f"  DISPATCH {hhmm(scenario_now())} dominik releases {REFERENCE} ({PARTY}) to {self.door} "
                   f"and starts picking: {len(PICKED)} cases of insulin pens")  # fmt: skip
        for what, code in PICKED:
            self.scanner.send(code)
            click.echo(f"  DISPATCH the picker scans {what} at {self.door}")
        if await wait_for(lit, stop, WAIT_S):
            self.refused = True
            click.echo(
                f"  DISPATCH STACK LIGHT ON at {self.door}: lot {RECALLED_LOT[1]} is recalled; the case "
                "stays in the warehouse (the gateway decided, no cloud needed)"
            )
        elif not stop.is_set():
            click.echo(f"  DISPATCH the stack light at {self.door} did not come on within {WAIT_S:.0f} s")
        found = await wait_for(self._flagged, stop, WAIT_S)
        if found:
            rec = await asyncio.to_thread(self._reconciliation)
            for d in rec.discrepancies:
                click.echo(
                    f"  DISPATCH {REFERENCE} in the cloud: {d.kind} ({d.cbv or 'no CBV word'}): {d.detail}"
                )
            click.echo(f"  DISPATCH {self.page()}")
        elif not stop.is_set():
            click.echo(f"  DISPATCH the cloud named no recalled case on {REFERENCE} in {WAIT_S:.0f} s")

    def _release(self) -> None:
        """Released to the door and picking started, as dominik does at the door page."""
        from coldgate.cloud.documents.moves import move_document

        now = datetime.datetime.now(datetime.UTC)
        with self.cloud.writer_engine.begin() as conn:
            dominik = actor(conn, "dock_operator")
            move_document(conn, self.document, "released", door=self.door, reason="picking at door 1",
                          by=dominik, now=now)  # fmt: skip
            move_document(conn, self.document, "in_progress", reason="picker at door 1", by=dominik, now=now)

    def _reconciliation(self) -> Any:
        return reconciliation(self.cloud, self.document)

    def _flagged(self) -> bool:
        """Both scans bound and the recalled case named on the order (the cloud's binding job)."""
        rec = self._reconciliation()
        return any(d.kind == "recalled" for d in rec.discrepancies) and sum(x.seen for x in rec.lines) >= 2
