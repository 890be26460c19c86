"""The parts every end-to-end test of a whole site runs: real gateway services on an event loop of their
own, the simulator's LLRP reader fed one pass at a time, a held scenario clock, and people calling the
real cloud's HTTP API with their own tokens.

The end-to-end tests (dock, QA case, recall) each had their own copy of these; one copy keeps what they
learned in one place: passes replayed in real time (a reader's timestamps run with the wall clock and the
gateway places reads by them), the gateway's loop in a thread so tests stay synchronous and poll with
``tests.rig.waiting.wait_until``, an error in the gateway's loop handed to the test's thread.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.service import GatewayService
from coldgate.simulator.llrp import TupleReads
from coldgate.simulator.llrp.messages import RoAccessReport, pack_ro_access_report
from coldgate.simulator.relay import RelayBoard
from coldgate.simulator.rfid_scenarios import Read
from tests.rig.people import bearer
from tests.rig.waiting import wait_until

__all__ = ["DoorPasses", "GatewaySite", "HeldClock", "People"]

#: Passes are replayed in real time: a reader's timestamps run with the wall clock, and the gateway places
#: reads by them (``gateway/readers/reader_clock.py``); a replay faster than real time makes the reader's
#: clock outrun the gateway's, and a later pass through the same portal is then placed seconds in the
#: past (its reads judged late, its tags strays).  A quick pass is a fast pallet (``speed_m_s``) instead.
SPEED = 1.0


class HeldClock:
    """A monotonic clock standing still until :meth:`release`, then running: a farm's scenario waits at a
    quiet moment until the story is ready for what comes next."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._released: float | None = None

    def __call__(self) -> float:
        return self._at if self._released is None else self._at + time.monotonic() - self._released

    def release(self) -> None:
        self._released = time.monotonic()


class DoorPasses:
    """The reader's reports: an empty report every 0.1 s while nothing passes (as a real reader at a
    quiet door sends), then each pass handed to :meth:`drive` in turn, its reads stamped from the moment
    it starts; ``passes`` counts the passes sent to the end."""

    def __init__(self) -> None:
        self._queue: queue.Queue[list[Read]] = queue.Queue()
        self.passes = 0

    def drive(self, reads: list[Read], timeout: float = 60.0) -> None:
        """Hand one pass to the reader and return once it has sent the pass's last read."""
        done = self.passes + 1
        self._queue.put(reads)
        wait_until(lambda: self.passes >= done, timeout, "the pass was sent by the reader")

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        message_id = 1_000_000
        while True:
            try:
                reads = self._queue.get_nowait()
            except queue.Empty:
                message_id += 1
                yield 0.1, pack_ro_access_report(RoAccessReport(message_id, ()))
                continue
            yield from TupleReads(reads, speed=SPEED, offset_ms=int(time.time() * 1000))
            self.passes += 1  # the reader fetches the next report only once the last one was written


class GatewaySite:
    """Gateway services, each with a relay board of its own (its local alarm's output), on one event loop
    in a thread.  ``configs``: name -> a function of the relay board's TCP port giving the config."""

    def __init__(self, configs: dict[str, Callable[[int], GatewayConfig]]) -> None:
        self.configs = configs
        self.boards = {name: RelayBoard(unit=1) for name in configs}
        self.services: dict[str, GatewayService] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="site", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the test's thread
            self.error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            for name, make in self.configs.items():
                self.services[name] = GatewayService(make(await self.boards[name].serve_tcp()))
            self._ready.set()
            await asyncio.gather(*(service.run(self._stop) for service in self.services.values()))
        finally:
            for board in self.boards.values():
                await board.stop()

    def __enter__(self) -> GatewaySite:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def lit(self, name: str) -> bool:
        """Whether gateway ``name``'s alarm output (coil 0) was ever switched on."""
        return any(w.coil == 0 and w.value for w in self.boards[name].writes())

    def held(self, name: str) -> set[tuple[str | None, str]]:
        """(lot, status) of the lot entries of the recall/quarantine list gateway ``name`` holds."""
        recalls = self.services[name].recalls
        if recalls is None:
            return set()
        return {(e.lot, e.status.value) for e in recalls.entries if e.serial is None}

    def holds_product(self, name: str, gtin: str) -> bool:
        """Whether gateway ``name`` holds the master data's product ``gtin`` (the catalog reached it)."""
        master = self.services[name].master
        return master is not None and gtin in {p.gtin for p in master.products}


class People:
    """The API as each person calls it with their own token (``tokens``: who -> bearer token)."""

    def __init__(self, api: str, tokens: dict[str, str]) -> None:
        self.api, self.tokens = api, tokens

    def request(
        self, who: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        """``who``'s request; the status and the answer's bytes (a CSV, a PDF...)."""
        request = urllib.request.Request(
            self.api + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={**bearer(self.tokens[who]), "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def call(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``who``'s request; the status and the decoded JSON answer."""
        status, content = self.request(who, method, path, body)
        return status, json.loads(content or b"null")

    def ok(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, answer = self.call(who, method, path, body)
        assert 200 <= status < 300, f"{who}: {method} {path}: {status} {answer}"
        return answer

    def fetch(self, who: str, path: str) -> bytes:
        """A file ``who`` downloads (CSV, PDF): its bytes, the answer being 200."""
        status, content = self.request(who, "GET", path)
        assert status == 200, f"{who}: GET {path}: {status} {content[:500]!r}"
        return content

    def refused(self, who: str, method: str, path: str, body: dict[str, Any], code: int, says: str) -> str:
        status, answer = self.call(who, method, path, body)
        detail = json.dumps(answer)
        assert (status, says in detail) == (code, True), f"{who}: {method} {path}: {status} {detail}"
        return detail
