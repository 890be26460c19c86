"""Which of the gateway's loops still turn, and the systemd watchdog petted only while all of them do.

systemd restarts a ``Type=notify`` service that stops sending WATCHDOG=1 for
``WatchdogSec``.  Petting from a timer alone would only prove the event loop
turns: a poller awaiting an answer that never comes, or an outbox writer thread
stuck in an fsync, would leave the cold room unmonitored while systemd thinks
all is well.  So every essential loop has a ``Beat``, and ``WatchdogPetter``
sends WATCHDOG=1 only if, at each look, every beat shows the loop *came round*:

- its progress value changed since the last look (a counter a loop bumps, a
  timestamp a thread writes), or
- it promised to come round later (``due``: the poller's next poll, the alarm
  loop's next tick) and that time plus the watchdog period has not passed; an
  offline sensor backing off for minutes is waiting, not hung, or
- it is *parked*: waiting for work by design (an outbox writer with nothing
  queued) -- it will come round when work comes.

Progress is "the loop came round", never "it produced data": a source that is
offline and backs off still turns.  A beat whose loop ended (its task is done,
its thread died) is stuck at once.  The event loop itself needs no beat: the
petter runs on it, so a loop blocked by a synchronous call stops the petting by
itself.

Each loop found stuck is logged once at ERROR with how long it has not come
round, so the journal says which part hung before systemd's SIGABRT.

Faults for tests (``COLDGATE_FAULT``, test-only, never set it on a Pi): make a
loop hang after ``COLDGATE_FAULT_AFTER_S`` seconds (default 5) so a test can
watch the watchdog restart the gateway:

- ``hang-poller``: every source task awaits a future nobody ever sets (an async
  hang: the event loop and everything else keep running);
- ``hang-outbox``: the outbox writer thread sleeps for ever before its next
  commit (a stuck fsync);
- ``block-loop``: the next item a source hands over blocks the whole event loop
  in ``time.sleep`` (a blocking call in a poller).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from coldgate.gateway.systemd_notify import Notifier

log = logging.getLogger(__name__)

T = TypeVar("T")

FAULT_ENV = "COLDGATE_FAULT"
FAULT_AFTER_ENV = "COLDGATE_FAULT_AFTER_S"
FAULTS = ("hang-poller", "hang-outbox", "block-loop")
#: How often the petter looks at the loops (it pets only every half watchdog period).
LOOK_EVERY_S = 1.0


@dataclass(eq=False)
class Beat:
    """One loop's sign of life, as the watch reads it.

    ``turns`` is bumped by loops that own their beat (``turn``); others give a
    ``progress`` callable instead.  ``due``: monotonic time by which the loop
    said it will come round (None: no promise).  ``parked``: it waits for work
    by design.  ``alive``: False once its task or thread ended.
    """

    name: str
    progress: Callable[[], object] | None = None
    due: Callable[[], float | None] | None = None
    parked: Callable[[], bool] | None = None
    alive: Callable[[], bool] | None = None
    turns: int = 0
    next_by: float | None = None  # set by ``turn``; read when ``due`` is not given
    _seen: object = field(default=None, repr=False)
    _changed_at: float | None = field(default=None, repr=False)

    def turn(self, next_by: float | None = None) -> None:
        """The loop came round; ``next_by``: the monotonic time it will come round again at the latest."""
        self.turns += 1
        self.next_by = next_by

    def stuck(self, now: float, period: float) -> str | None:
        """None if the loop turns; else why it does not (for the log)."""
        if self.alive is not None and not self.alive():
            return "has ended"
        seen = self.progress() if self.progress is not None else self.turns
        if self._changed_at is None or seen != self._seen:
            self._seen, self._changed_at = seen, now
            return None
        if self.parked is not None and self.parked():
            self._changed_at = now  # waiting for work: the period counts from when work could come
            return None
        due = self.due() if self.due is not None else self.next_by
        if due == math.inf:  # no promise to come round: it waits for something to happen
            self._changed_at = now
            return None
        since = self._changed_at if due is None else max(self._changed_at, due)
        if now - since > period:
            return f"has not come round for {now - self._changed_at:.1f} s"
        return None


class LoopWatch:
    """Looks at every beat; ``beats`` is called at each look, since the app (and its sources) may be
    replaced by a pushed configuration."""

    def __init__(self, beats: Callable[[], Iterable[Beat]], clock: Callable[[], float] = time.monotonic):
        self._beats = beats
        self._clock = clock

    def stuck(self, period: float) -> list[tuple[str, str]]:
        now = self._clock()
        out = []
        for beat in self._beats():
            why = beat.stuck(now, period)
            if why is not None:
                out.append((beat.name, why))
        return out


class WatchdogPetter:
    """Sends READY=1 once, then WATCHDOG=1 every half period while no loop is stuck, and STATUS= lines.

    ``ready``: whether the gateway is up (outbox open, loops started).  ``status``:
    a short line for ``systemctl status``.
    """

    def __init__(
        self,
        notifier: Notifier,
        watch: LoopWatch,
        *,
        period_s: float | None,
        ready: Callable[[], bool],
        status: Callable[[], str],
        status_every_s: float = 10.0,
    ) -> None:
        self.notifier = notifier
        self.watch = watch
        self.period_s = period_s
        self._ready = ready
        self._status = status
        self._status_every_s = status_every_s
        self.pets = 0
        self.stuck: list[tuple[str, str]] = []

    def look(self, pet: bool = True) -> bool:
        """One look: whether every loop turns (then pet, if ``pet``); log at ERROR, once per loop and
        episode, which do not."""
        assert self.period_s is not None
        stuck = self.watch.stuck(self.period_s)
        if stuck:
            known = [name for name, _ in self.stuck]
            for name, why in stuck:
                if name not in known:  # once per loop and episode: the journal keeps the first word
                    log.error("loop %s %s: not petting the systemd watchdog", name, why)
            names = [name for name, _ in stuck]
            if names != known:
                self.notifier.status(f"stuck: {', '.join(names)}")
            self.stuck = stuck
            return False
        if self.stuck:
            log.warning("every loop turns again: petting the systemd watchdog")
            self.stuck = []
        if pet:
            self.notifier.watchdog()
            self.pets += 1
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (the service says STOPPING=1).

        Pets every half period, as sd_watchdog_enabled(3) advises, but looks every
        second: the watch sees a loop's last turn at the look after it, so looking
        only at each pet would let a hung loop be petted for up to a period and a
        half (75 s at ``WatchdogSec=30``, not 31).
        """
        while not self._safe_ready() and not stop.is_set():
            await _wait(stop, 0.05)
        if stop.is_set():
            return
        self.notifier.ready(self._safe_status())
        if self.notifier.enabled:
            log.info("told systemd the gateway is ready (watchdog %s)", self.period_s or "off")
        period = self.period_s
        tick = min(LOOK_EVERY_S, period / 4) if period else self._status_every_s
        last_status, last_pet = time.monotonic(), -math.inf
        while not stop.is_set():
            if period:
                now = time.monotonic()
                pet = now - last_pet >= period / 2 - tick / 2  # half a tick early rather than a tick late
                if self._safe_look(pet) and pet:
                    last_pet = now
            if not self.stuck and time.monotonic() - last_status >= self._status_every_s:
                self.notifier.status(self._safe_status())
                last_status = time.monotonic()
            await _wait(stop, tick)

    def _safe_look(self, pet: bool) -> bool:
        """``look``, where a bug in a beat (a property of a source raising) neither ends this task, which
        would stop the whole gateway, nor pets: systemd then restarts a gateway whose state nobody can
        read, which is what the watchdog is for."""
        try:
            return self.look(pet)
        except Exception:
            log.exception("cannot tell whether the loops turn: not petting the systemd watchdog")
            return False

    def _safe_ready(self) -> bool:
        try:
            return self._ready()
        except Exception:
            log.exception("cannot tell whether the gateway is ready")
            return False

    def _safe_status(self) -> str:
        try:
            return self._status()
        except Exception:  # the status line is for people: never let it stop the petting
            log.exception("cannot build the systemd status line")
            return "running"


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


# ------------------------------------------------------------------ source tasks


class CountedCoroutine(Coroutine[Any, Any, T]):
    """Wraps a source's ``run`` coroutine so each step of its task bumps a beat.

    A step is the task resuming the coroutine (an awaited answer came, a sleep
    ended): the source's loop coming round, seen from outside without a hook in
    every kind of source.  It costs one attribute increment a step.  With the
    ``hang-poller`` fault it stops forwarding after the fault's delay and hands
    the task a future nobody sets.
    """

    def __init__(self, coro: Coroutine[Any, Any, T], beat: Beat, hang_at: float | None = None) -> None:
        self._coro = coro
        self._beat = beat
        self._hang_at = hang_at

    def send(self, value: Any) -> Any:
        self._beat.turns += 1
        if self._hang_at is not None and time.monotonic() >= self._hang_at:
            self._hang_at = None
            log.warning("fault %s: source loop %s now hangs", "hang-poller", self._beat.name)
            future = asyncio.get_running_loop().create_future()
            future._asyncio_future_blocking = True  # what Future.__await__ sets before yielding itself
            return future  # the task waits on it for ever; a cancel still ends the task
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(val if val is not None else typ)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        return self  # type: ignore[return-value]

    def __next__(self) -> Any:
        return self.send(None)

    def __iter__(self) -> CountedCoroutine[T]:
        return self


# ------------------------------------------------------------------ test-only faults


@dataclass(frozen=True)
class Fault:
    """A test-only fault from ``COLDGATE_FAULT``; see the module's docstring."""

    kind: str
    at: float  # monotonic time it strikes

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Fault | None:
        env = os.environ if environ is None else environ
        kind = env.get(FAULT_ENV, "").strip()
        if not kind:
            return None
        if kind not in FAULTS:
            log.error("%s=%s is not a fault (%s); ignored", FAULT_ENV, kind, ", ".join(FAULTS))
            return None
        after = float(env.get(FAULT_AFTER_ENV, "5"))
        log.warning("test-only fault %s armed: strikes in %.1f s", kind, after)
        return cls(kind, time.monotonic() + after)

    def hang_at(self, kind: str) -> float | None:
        return self.at if self.kind == kind else None

    def block_emit(self, emit: Callable[[T], None]) -> Callable[[T], None]:
        """``block-loop``: the first item after the fault blocks the event loop for ever."""
        if self.kind != "block-loop":
            return emit

        def blocking(item: T) -> None:
            if time.monotonic() >= self.at:
                log.warning("fault block-loop: blocking the event loop")
                while True:
                    time.sleep(3600)
            emit(item)

        return blocking

    def hang_committer(self, committer: Any) -> None:
        """``hang-outbox``: the writer thread sleeps for ever at its next commit after the fault."""
        if self.kind != "hang-outbox":
            return
        commit = committer._commit
        at = self.at

        def hanging(group: Any) -> None:
            if time.monotonic() >= at and threading.current_thread().name == "outbox-writer":
                log.warning("fault hang-outbox: the outbox writer hangs")
                threading.Event().wait()
            commit(group)

        committer._commit = hanging
