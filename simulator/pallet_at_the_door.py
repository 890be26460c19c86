"""A pallet waiting in the yard until someone drives it through the dock door: an LLRP report source.

The simulated reader (``simulator.llrp``) sends whatever its source yields while a client's ROSpec
runs.  This source yields empty RO_ACCESS_REPORTs (nothing in the field) every ``idle_s`` until
:meth:`PalletAtTheDoor.drive` is called, from any thread, then the pallet's reads
(``rfid_scenarios.pallet_pass``) paced as they happen, stamped from the moment the pass starts, so
the reader's timestamps and the gateway's clock agree.  The demo drives the pallet once the receiving
note is released; a test can hold it until the gateway is ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from coldgate.simulator.llrp.messages import RoAccessReport, pack_ro_access_report
from coldgate.simulator.llrp.reader import TupleReads
from coldgate.simulator.rfid_scenarios import Read

__all__ = ["PalletAtTheDoor"]


class PalletAtTheDoor:
    """Nothing in the field until :meth:`drive`; then ``reads`` (written from 0 ms) as happening now."""

    def __init__(self, reads: list[Read], *, idle_s: float = 0.2) -> None:
        self.reads = reads
        self.idle_s = idle_s
        self._go = threading.Event()
        self.started_ms: int | None = None  # wall-clock epoch ms of the pass's first read time

    def drive(self) -> None:
        """Drive the pallet through the door (thread-safe; once is enough)."""
        self._go.set()

    @property
    def driven(self) -> bool:
        return self._go.is_set()

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        message_id = 1_000_000  # apart from TupleReads' ids, which count from 1
        while not self._go.is_set():
            message_id += 1
            yield self.idle_s, pack_ro_access_report(RoAccessReport(message_id, ()))
        self.started_ms = int(time.time() * 1000)
        yield from TupleReads(self.reads, speed=1.0, offset_ms=self.started_ms)
