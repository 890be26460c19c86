"""``gateway.loop_watch``: the watchdog is petted only while every loop comes round.

A loop that waits by design (an offline sensor backing off, an outbox writer
with nothing queued) still counts as turning; one that stopped coming round,
or whose task ended, stops the petting, and the log says which.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from coldgate.gateway.loop_watch import Beat, CountedCoroutine, Fault, LoopWatch, WatchdogPetter
from coldgate.gateway.systemd_notify import Notifier

PERIOD = 2.0


class Now:
    """A hand-turned monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_loop_that_comes_round_turns_and_one_that_stops_is_stuck_after_the_period() -> None:
    now, beat = Now(), Beat("poller")
    watch = LoopWatch(lambda: [beat], now)
    for _ in range(5):
        beat.turn()
        now.t += 1.0
        assert watch.stuck(PERIOD) == []
    now.t += 1.5  # 1.5 s since the last change seen: within the period
    assert watch.stuck(PERIOD) == []
    now.t += 1.0
    assert watch.stuck(PERIOD) == [("poller", "has not come round for 2.5 s")]
    beat.turn()
    assert watch.stuck(PERIOD) == []


def test_a_loop_waiting_until_its_next_due_turn_is_not_stuck_until_that_plus_the_period() -> None:
    """An offline sensor backing off for minutes: it turns, it just waits."""
    now = Now()
    due = [now.t + 240.0]
    beat = Beat("source modbus:bus-a", due=lambda: due[0])
    watch = LoopWatch(lambda: [beat], now)
    assert watch.stuck(PERIOD) == []
    now.t += 241.0
    assert watch.stuck(PERIOD) == []
    now.t += PERIOD + 0.5  # it should have come round 2.5 s ago
    assert [name for name, _ in watch.stuck(PERIOD)] == ["source modbus:bus-a"]


def test_a_loop_with_no_promise_to_come_round_waits_for_work() -> None:
    now, beat = Now(), Beat("scanner", due=lambda: float("inf"))
    watch = LoopWatch(lambda: [beat], now)
    now.t += 3600
    assert watch.stuck(PERIOD) == []


def test_a_parked_loop_is_fine_until_work_comes_and_it_does_not_take_it() -> None:
    """The outbox writer with nothing queued sleeps; with items queued it must come round."""
    now, queued, turned_at = Now(), [0], [1.0]
    beat = Beat("outbox writer", progress=lambda: turned_at[0], parked=lambda: queued[0] == 0)
    watch = LoopWatch(lambda: [beat], now)
    assert watch.stuck(PERIOD) == []
    now.t += 120
    assert watch.stuck(PERIOD) == []
    queued[0] = 3  # items arrive; the writer hangs and never takes them
    now.t += 1.0
    assert watch.stuck(PERIOD) == []
    now.t += 1.5
    assert [name for name, _ in watch.stuck(PERIOD)] == ["outbox writer"]
    turned_at[0] = 2.0  # it came round after all
    assert watch.stuck(PERIOD) == []


def test_a_loop_that_ended_is_stuck_at_once() -> None:
    now, alive = Now(), [True]
    beat = Beat("alarm", alive=lambda: alive[0])
    watch = LoopWatch(lambda: [beat], now)
    assert watch.stuck(PERIOD) == []
    alive[0] = False
    assert watch.stuck(PERIOD) == [("alarm", "has ended")]


def test_the_petter_pets_only_while_every_loop_turns_and_says_once_which_is_stuck(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = Now()
    fine, hung = Beat("alarm"), Beat("source modbus:bus-a")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.setblocking(False)

        def sent() -> list[bytes]:
            out = []
            while True:
                try:
                    out.append(sock.recv(4096))
                except BlockingIOError:
                    return out

        petter = WatchdogPetter(
            Notifier(str(tmp_path / "notify")),
            LoopWatch(lambda: [fine, hung], now),
            period_s=PERIOD,
            ready=lambda: True,
            status=lambda: "polling",
        )
        caplog.set_level(logging.ERROR, "coldgate.gateway.loop_watch")
        for _ in range(3):
            fine.turn()
            hung.turn()
            assert petter.look()
            now.t += PERIOD / 2
        assert sent() == [b"WATCHDOG=1"] * 3
        for _ in range(3):  # the poller stops coming round; the alarm loop goes on
            fine.turn()
            now.t += PERIOD / 2
            petter.look()
        stuck = b"STATUS=stuck: source modbus:bus-a"
        assert sent() == [b"WATCHDOG=1", stuck], "petted until a whole period passed, then not"
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            "loop source modbus:bus-a has not come round for 3.0 s: not petting the systemd watchdog"
        ], "once, however long it stays stuck"
        hung.turn()
        fine.turn()
        assert petter.look()
        assert sent() == [b"WATCHDOG=1"]


def test_a_beat_that_raises_stops_the_petting_not_the_petter(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a source's sign of life must not end the petter's task (the service stops when any of its
    tasks fails, polling with it): it logs, does not pet, and looks again (review)."""

    def broken() -> float:
        raise ZeroDivisionError("a source's property broke")

    petter = WatchdogPetter(
        Notifier(None),
        LoopWatch(lambda: [Beat("source modbus:bus-a", progress=broken)], Now()),
        period_s=PERIOD,
        ready=lambda: True,
        status=lambda: "polling",
    )
    caplog.set_level(logging.ERROR, "coldgate.gateway.loop_watch")
    assert petter._safe_look(True) is False and petter.pets == 0
    assert "cannot tell whether the loops turn" in caplog.text and "ZeroDivisionError" in caplog.text


async def _source(interval: float, turns: list[int]) -> None:
    while True:
        turns[0] += 1
        await asyncio.sleep(interval)


def test_a_source_task_counts_its_steps_and_the_hang_poller_fault_stops_them() -> None:
    asyncio.run(_counted_steps())


async def _counted_steps() -> None:
    beat, turns = Beat("source fake"), [0]
    task = asyncio.create_task(CountedCoroutine(_source(0.01, turns), beat, time.monotonic() + 0.2))
    await asyncio.sleep(0.1)
    before = beat.turns
    assert before >= 3
    await asyncio.sleep(0.3)  # the fault struck at 0.2 s: the task waits on a future nobody sets
    hung_at = beat.turns
    await asyncio.sleep(0.2)
    assert beat.turns == hung_at and not task.done()
    task.cancel()  # a hung source still stops when the app stops
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_petter_says_ready_pets_and_stops_petting_when_a_real_source_task_hangs(tmp_path: Path) -> None:
    """A source sleeping between polls turns; hung (hang-poller) it stops the petting within the period."""
    asyncio.run(_petting_a_source(tmp_path))


async def _petting_a_source(tmp_path: Path) -> None:
    period = 0.4
    beat = Beat("source fake", due=None)
    task = asyncio.create_task(CountedCoroutine(_source(0.05, [0]), beat, time.monotonic() + 0.6))
    beat.alive = lambda: not task.done()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.setblocking(False)
        petter = WatchdogPetter(
            Notifier(str(tmp_path / "notify")),
            LoopWatch(lambda: [beat]),
            period_s=period,
            ready=lambda: True,
            status=lambda: "polling 1 sensors on 1 lines, outbox 0 unacked",
        )
        stop = asyncio.Event()
        running = asyncio.create_task(petter.run(stop))
        await asyncio.sleep(0.55)
        pets_before_hang = petter.pets
        await asyncio.sleep(0.8)  # the hang at 0.6 s is seen within a period and a half
        assert pets_before_hang >= 2
        assert petter.pets <= pets_before_hang + 3
        pets_after = petter.pets
        await asyncio.sleep(0.6)
        assert petter.pets == pets_after, "no petting while the source stays hung"
        assert [name for name, _ in petter.stuck] == ["source fake"]
        stop.set()
        await running
        task.cancel()
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096))
            except BlockingIOError:
                break
        assert messages[0] == b"READY=1\nSTATUS=polling 1 sensors on 1 lines, outbox 0 unacked"
        assert b"WATCHDOG=1" in messages and b"STATUS=stuck: source fake" in messages


def test_faults_come_only_from_the_environment_and_only_known_ones() -> None:
    assert Fault.from_env({}) is None
    assert Fault.from_env({"COLDGATE_FAULT": "explode"}) is None
    fault = Fault.from_env({"COLDGATE_FAULT": "hang-outbox", "COLDGATE_FAULT_AFTER_S": "0"})
    assert fault is not None and fault.hang_at("hang-poller") is None
    assert fault.hang_at("hang-outbox") is not None


class _Sleepy:
    """A source that comes round every ``wait_s`` and says so (``next_turn_at``), like a backing-off line."""

    def __init__(self, source_id: str, wait_s: float, *, hang_after: int | None = None) -> None:
        self.id = source_id
        self.wait_s = wait_s
        self.hang_after = hang_after
        self.turns = 0
        self._next = time.monotonic()

    async def run(self, emit: object) -> None:
        while True:
            self.turns += 1
            self._next = time.monotonic() + self.wait_s
            if self.hang_after is not None and self.turns > self.hang_after:
                await asyncio.get_running_loop().create_future()  # a request that never ends
            await asyncio.sleep(self.wait_s)

    def status(self) -> list[object]:
        return []

    def next_turn_at(self) -> float:
        return self._next


class _SlowSiren:
    name = "slow siren"

    async def drive(self, sounding: bool, state: object) -> None:
        await asyncio.sleep(0.6)  # longer than the watch's period below, within the alarm's budget


def test_the_apps_beats_tell_a_hung_source_from_a_waiting_one_and_a_slow_alarm_output(tmp_path: Path) -> None:
    from coldgate.gateway.app import GatewayApp
    from coldgate.gateway.config_load import gateway_config_from_document
    from tests.rig.sinks import ListSink

    config = gateway_config_from_document(
        {"gateway": {"id": "gw-beats", "site": "s", "data_dir": str(tmp_path)}}, "beats.toml"
    )
    waiting = _Sleepy("fake:waiting", 1.0)  # waits past the period, as promised
    hung = _Sleepy("fake:hung", 0.05, hang_after=3)
    app = GatewayApp(
        config,
        ListSink(),
        sources=[waiting, hung],  # type: ignore[list-item]
        alarm_outputs=[_SlowSiren()],
        control_path=tmp_path / "control.sock",
    )

    async def scenario() -> set[str]:
        stop = asyncio.Event()
        running = asyncio.create_task(app.run(stop))
        await asyncio.sleep(0.05)
        assert app.started
        watch = LoopWatch(lambda: app.beats)
        seen: set[str] = set()
        for _ in range(25):
            seen |= {name for name, _ in watch.stuck(0.3)}
            await asyncio.sleep(0.1)
        stop.set()
        await running
        return seen

    assert asyncio.run(scenario()) == {"source fake:hung"}
    assert waiting.turns >= 2
    assert {beat.name for beat in app.beats} == {"source fake:waiting", "source fake:hung", "alarm"}


def test_a_serial_logger_promises_its_next_slot_so_a_hung_open_is_seen(tmp_path: Path) -> None:
    """Serial ASCII loggers come round at every slot: the watchdog holds them to it (review: they had
    no promise, so a port open hung on a wedged USB adapter was petted for ever)."""
    from coldgate.gateway.app import _next_turn, build_sources
    from coldgate.gateway.clock import SystemClock
    from coldgate.gateway.config_load import gateway_config_from_document

    document = {
        "gateway": {"id": "gw-serial", "site": "s", "data_dir": str(tmp_path)},
        "sensors": [
            {"source": "serial_ascii", "id": "fridge", "port": str(tmp_path / "tty"), "interval_s": 5,
             "pattern": r"T=(?P<temperature>-?\d+(\.\d+)?)"},
        ],
    }  # fmt: skip
    [source] = build_sources(gateway_config_from_document(document, "serial.toml"), SystemClock())
    source.slots.due = 1234.5  # type: ignore[attr-defined]
    assert _next_turn(source)() == 1234.5
