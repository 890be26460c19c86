"""Issue 6's door promise end to end on real parts: a pallet of a recalled batch leaves through the
outbound door of the simulated LLRP reader, and the stack light relay (the simulated relay board over
Modbus TCP) switches on within 500 ms of the departure decision; the same pallet inbound only warns."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sllurp", reason="the LLRP tests need the [gateway] extra (sllurp)")

from coldgate.contract.downlink import MasterData, Product, RecallList, TemperatureClass
from coldgate.contract.items import Alert, AlertAction, Direction, Item, Movement, Severity
from coldgate.gateway.app import GatewayApp
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread, TupleReads
from coldgate.simulator.relay import RelayBoard
from coldgate.simulator.rfid_scenarios import pallet_pass
from tests.rig import dock

pytestmark = pytest.mark.timeout(90)


class TimedSink:
    """The outbox's place: every item with the monotonic time it was put."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Item]] = []

    def put(self, item: Item) -> None:
        self.items.append((time.monotonic(), item))

    def of(self, kind: type) -> list[tuple[float, Any]]:
        return [(t, item) for t, item in self.items if isinstance(item, kind)]


def config(data_dir: Path, reader_port: int, relay_port: int) -> Any:
    return gateway_config_from_document(
        {
            "gateway": {"id": "dock-pi", "site": "site1", "data_dir": str(data_dir)},
            "modbus_lines": [
                {
                    "id": "lights",
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": relay_port,
                    "timeout_s": 0.5,
                }
            ],
            "readers": [
                {
                    "id": "dock2-r1",
                    "host": "127.0.0.1",
                    "port": reader_port,
                    "door": "dock2",
                    "outside_antennas": [1],
                    "inside_antennas": [2],
                    "keepalive_s": 2,
                }
            ],
            "alarm": {"min_severity": "critical", "relay": {"line": "lights", "unit": 1, "coil": 0}},
        },
        "dock.toml",
    )


def documents(gtin: str) -> tuple[MasterData, RecallList]:
    """An ambient product, and its recall (the rig's document builders)."""
    master_data = dock.master(
        temperature_classes=[TemperatureClass(name="15-25C", low=15.0, high=25.0)],
        products=[Product(gtin=gtin, name="Infusion set", temperature_class="15-25C")],
        batches=[],
    )
    return master_data, dock.recalls(dock.recall(gtin, reference="FSN-2026-007", reason="sterility"))


@pytest.mark.parametrize("direction", ["out", "in"])
def test_a_recalled_pallet_at_the_outbound_door_lights_the_stack_light(
    tmp_path: Path, direction: str
) -> None:
    reads = pallet_pass(direction, start_ms=int(time.time() * 1000), seed=5)  # type: ignore[arg-type]
    gtin = decode_epc(reads[0][2]).gtin
    assert gtin is not None
    master, recalls = documents(gtin)

    async def scenario(reader_port: int) -> tuple[TimedSink, RelayBoard]:
        board = RelayBoard(unit=1)
        relay_port = await board.serve_tcp()
        sink = TimedSink()
        app = GatewayApp(config(tmp_path, reader_port, relay_port), sink, master=master, recalls=recalls)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        try:
            deadline = time.monotonic() + 60
            while len(sink.of(Movement)) < 201:
                assert time.monotonic() < deadline, f"{len(sink.of(Movement))} movements"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await task
            await board.stop()
        return sink, board

    with LlrpReaderThread(LlrpReader(TupleReads(reads), port=0)) as reader:
        sink, board = asyncio.run(scenario(reader.port))

    moved = sink.of(Movement)
    raised = [
        (t, a) for t, a in sink.of(Alert) if a.action is AlertAction.RAISED and a.rule == "door.recalled"
    ]
    assert raised, "a recalled case passed without an alert"
    recalled_cases = [m for _, m in moved if decode_epc(m.epc).gtin == gtin]
    assert len(recalled_cases) > 1 and len(raised) == 1, "one alert for the pallet, not one per case"
    first_move_at, first_move = moved[0]
    assert all(a.subject == "dock2" and "FSN-2026-007" in str(a.evidence.details) for _, a in raised)
    switched_on = [w for w in board.writes() if w.coil == 0 and w.value]
    if direction == "out":
        assert {a.severity for _, a in raised} == {Severity.CRITICAL}
        assert switched_on, "the stack light never came on"
        latency = switched_on[0].monotonic - first_move_at
        print(f"\ndeparture decision -> stack light on: {latency * 1000:.0f} ms")
        assert latency <= 0.5, f"{latency:.3f} s from the departure decision of {first_move.epc} to the light"
    else:
        assert {a.severity for _, a in raised} == {Severity.WARNING}
        assert not switched_on, "an inbound recalled pallet is flagged, not a dock stop"


class RefusingSink(TimedSink):
    """An outbox that refuses movements (say, one with a timestamp it cannot take)."""

    def put(self, item: Item) -> None:
        if isinstance(item, Movement):
            raise ValueError("refused")
        super().put(item)


def _movement(epc: str) -> Movement:
    from coldgate.gateway.clock import SystemClock
    from coldgate.gateway.observations import stamp_fields

    stamp = SystemClock().stamp()
    return Movement(
        **stamp_fields(stamp),  # type: ignore[arg-type]
        reader="dock2-r1",
        door="dock2",
        direction=Direction.OUT,
        epc=epc,
        first_seen=stamp.wall_ms,
        last_seen=stamp.wall_ms,
        read_count=3,
    )


def test_the_door_is_warned_even_when_the_record_is_refused(tmp_path: Path) -> None:
    epc = "3074257bf7194e4000001a85"
    gtin = decode_epc(epc).gtin
    assert gtin is not None
    master, recalls = documents(gtin)
    sink = RefusingSink()

    async def scenario() -> GatewayApp:  # the app's Modbus writer wants a running loop
        app = GatewayApp(config(tmp_path, 5084, 5020), sink, master=master, recalls=recalls)
        app.emit(_movement(epc))
        return app

    app = asyncio.run(scenario())
    assert [a.rule for _, a in sink.of(Alert)] == ["door.recalled"]
    assert app.alarm.sounding


def test_a_pushed_door_policy_applies_and_the_dock_state_stays(tmp_path: Path) -> None:
    document = {
        "gateway": {"id": "dock-pi", "site": "site1", "data_dir": str(tmp_path)},
        "door_checks": {"near_expiry_days": 5, "tor_budget_s": 600},
    }

    async def scenario() -> tuple[GatewayApp, GatewayApp]:
        first = GatewayApp(config(tmp_path, 5084, 5020), TimedSink())
        pushed = gateway_config_from_document(document, "pushed")
        return first, GatewayApp(pushed, TimedSink(), previous=first)

    first, second = asyncio.run(scenario())
    assert second.dock.checks is first.dock.checks
    assert (second.dock.checks.policy.near_expiry_days, second.dock.checks.policy.tor_budget_s) == (5, 600.0)


def test_a_pallet_under_way_stays_one_alert_across_a_pushed_configuration(tmp_path: Path) -> None:
    """Cases before and after a reload are one pallet: the group alert and its count carry over."""
    from coldgate.simulator.rfid_scenarios import sgtin96_hex

    epcs = [sgtin96_hex("0614141", "812345", serial) for serial in range(1, 6)]
    gtin = decode_epc(epcs[0]).gtin
    assert gtin is not None
    master, recalls = documents(gtin)
    document = {
        "gateway": {"id": "dock-pi", "site": "site1", "data_dir": str(tmp_path)},
        "door_checks": {"group_window_s": 60},
    }
    before, after = TimedSink(), TimedSink()

    async def scenario() -> tuple[GatewayApp, GatewayApp]:
        first = GatewayApp(config(tmp_path, 5084, 5020), before, master=master, recalls=recalls)
        for epc in epcs[:3]:
            first.emit(_movement(epc))
        pushed = gateway_config_from_document(document, "pushed")
        second = GatewayApp(pushed, after, previous=first, master=master, recalls=recalls)
        for epc in epcs[3:]:
            second.emit(_movement(epc))
        return first, second

    first, second = asyncio.run(scenario())
    assert second.dock.groups is first.dock.groups and second.dock.groups.window_ms == 60_000
    (raised,) = [a for _, a in before.of(Alert)]
    assert (raised.action, raised.severity) == (AlertAction.RAISED, Severity.CRITICAL)
    assert after.of(Alert) == [], "the cases after the reload joined the open alert"
    assert second.dock.groups.open_alerts() == [(raised.alert_id, "door.recalled", "dock2", 5)]
    assert second.alarm.sounding


def test_a_readers_pass_is_decoded_once_recorded_then_judged_at_the_door(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dock in one place: a reader's decided pass reaches the door checks with the EPC decoded
    when the pass was decided (``gateway.dock.passage``), not decoded a second time; the movement is
    in the sink before its alert, and in the contract's lower case."""
    from coldgate.gateway import dock
    from coldgate.gateway.readers.llrp_source import LlrpReaderSource
    from coldgate.gateway.rules.dock_portal import TagRead

    epc = "3074257BF7194E4000001A85"
    gtin = decode_epc(epc).gtin
    assert gtin is not None
    master, recalls = documents(gtin)
    decoded: list[str] = []
    real_decode = dock.decode_epc
    monkeypatch.setattr(dock, "decode_epc", lambda text: decoded.append(text) or real_decode(text))
    sink = TimedSink()

    async def scenario() -> GatewayApp:  # the app's Modbus writer wants a running loop
        app = GatewayApp(config(tmp_path, 5084, 5020), sink, master=master, recalls=recalls)
        (reader,) = [s for s in app.sources if isinstance(s, LlrpReaderSource)]
        now = reader.clock.stamp().mono_ms
        for i, antenna in enumerate((2, 2, 1, 1)):  # inside, then outside: leaving
            reader.portal.read(TagRead(epc, antenna, -50.0, now + 100 * i))
        app.finish_passes()
        return app

    app = asyncio.run(scenario())
    assert decoded == [epc]
    assert [type(item).__name__ for _, item in sink.items] == ["Movement", "Alert"]
    (_, movement), (_, alert) = sink.items
    assert movement.epc == epc.lower() and movement.direction is Direction.OUT
    assert (alert.rule, alert.severity, alert.evidence.details["key"]) == (
        "door.recalled",
        Severity.CRITICAL,
        epc.lower(),
    )
    assert app.alarm.sounding
