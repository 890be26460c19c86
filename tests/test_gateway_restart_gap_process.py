"""``coldgate gateway run`` killed and started again: the time nobody monitored is one gap record.

The gateway runs as a real process (``python -m coldgate gateway run``) against
the simulator's logger over Modbus TCP and the session's private Mosquitto (no
cloud acknowledges, so everything stays in the outbox to be read back).  It is
``kill -9``-ed, started again ~2 s later, then "rebooted" (killed while its
boot-id file, ``COLDGATE_BOOT_ID_FILE``, gets a new id, as the kernel's does),
then stopped cleanly and started again.  Each interruption must leave exactly
one ``gateway_offline`` gap about the gateway, from the last reading before
it to the first poll after it, saying which kind of interruption it was.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldgate.contract.items import Event, EventType, Gap, GapCause, Item, Reading, SubjectType
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.outbox import stored
from tests.rig.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = "gw-restart"
POLL_MS = 1_000
DOWN_S = 2.0


def write_config(data_dir: Path, logger_port: int, broker: MosquittoBroker) -> Path:
    """One logger polled every second; the uplink to the private broker, heartbeats every 5 s."""
    path = data_dir / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "{GATEWAY}"
site = "site-restart"
data_dir = "{data_dir}"

[uplink]
broker = "mqtt://{broker.host}:{broker.port}"
heartbeat_s = 5

[outbox]
commit_interval_ms = 20

[[modbus_lines]]
id = "loggers"
transport = "tcp"
host = "127.0.0.1"
port = {logger_port}
timeout_s = 0.5

[[sensors]]
source = "modbus"
id = "cr1-t1"
line = "loggers"
unit = 1
profile = "xy-md02"
interval_s = {POLL_MS / 1000}
retries = 0
"""
    )
    return path


class Gateway:
    """The gateway process, started and ended as systemd (or a power cut) would."""

    def __init__(self, config: Path, boot_id_file: Path) -> None:
        self.config = config
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "COLDGATE_BOOT_ID_FILE": str(boot_id_file)}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "gateway.log"

    def start(self) -> None:
        assert self.process is None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coldgate", "gateway", "run", str(self.config), "--log-level", "INFO"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def end(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        if sig is signal.SIGTERM:
            assert code == 0, self.log.read_text()

    def stop_if_running(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def logger_port() -> Iterator[int]:
    farm = FarmConfig((LoggerSpec(unit=1, register_map="xy-md02", scenario="steady", seed=1),))
    with FarmThread(farm, tcp=[("127.0.0.1", 0)]) as running:
        yield running.tcp[0].port


def items(data_dir: Path) -> list[Item]:
    """Every item in the outbox; none while the first process is still creating the file."""
    if not (data_dir / "outbox.sqlite3").exists():
        return []  # sqlite3.connect would create it
    try:
        return [item for _, _, _, item in stored(data_dir)]
    except sqlite3.OperationalError:  # no file, or no table in it yet
        return []


def temperatures(data_dir: Path) -> list[Reading]:
    return [i for i in items(data_dir) if isinstance(i, Reading) and i.quantity == "temperature"]


def gateway_gaps(data_dir: Path) -> list[Gap]:
    return [i for i in items(data_dir) if isinstance(i, Gap) and i.subject_type is SubjectType.GATEWAY]


def run_until_polled(gateway: Gateway, data_dir: Path, readings: int = 3) -> None:
    """Start the gateway and wait until it has committed ``readings`` more temperature readings."""
    before = len(temperatures(data_dir))
    gateway.start()
    wait_until(
        lambda: len(temperatures(data_dir)) >= before + readings, 60, f"{readings} readings after a start"
    )


def test_each_kill_reboot_and_stop_of_the_gateway_is_one_gap_from_the_last_reading_to_the_first_poll(
    tmp_path: Path, mosquitto_own: MosquittoBroker, logger_port: int
) -> None:
    boot_id_file = tmp_path / "boot_id"
    first_boot, second_boot = uuid.uuid4(), uuid.uuid4()
    boot_id_file.write_text(f"{first_boot}\n")
    gateway = Gateway(write_config(tmp_path, logger_port, mosquitto_own), boot_id_file)
    interruptions: list[tuple[int, str]] = []  # (ts of the last item before it, kind)

    def interrupt(sig: signal.Signals, kind: str, new_boot: uuid.UUID | None = None) -> None:
        gateway.end(sig)
        before = temperatures(tmp_path)
        interruptions.append((before[-1].ts, kind))
        if new_boot is not None:
            boot_id_file.write_text(f"{new_boot}\n")  # the kernel's new boot id after a power cut
        time.sleep(DOWN_S)
        run_until_polled(gateway, tmp_path)

    try:
        run_until_polled(gateway, tmp_path)
        assert gateway_gaps(tmp_path) == [], "a first start records no gap"
        interrupt(signal.SIGKILL, "crash")
        interrupt(signal.SIGKILL, "power loss", new_boot=second_boot)
        interrupt(signal.SIGTERM, "clean stop")
        gateway.end(signal.SIGTERM)
    finally:
        gateway.stop_if_running()

    everything = items(tmp_path)
    gaps = gateway_gaps(tmp_path)
    assert len(gaps) == len(interruptions), [g.detail for g in gaps]
    readings = temperatures(tmp_path)
    for gap, (last_ts, kind) in zip(gaps, interruptions, strict=True):
        assert (gap.subject, gap.cause) == (GATEWAY, GapCause.GATEWAY_OFFLINE)
        assert gap.end is not None
        # Start: the last sign of life, the last reading before the interruption (or a heartbeat
        # or the "stopping" event a moment later, within one poll).
        assert 0 <= gap.start - last_ts <= POLL_MS + 500, (kind, gap.start - last_ts)
        # End: the new process starting its sources, right before its first poll.
        first_after = next(r for r in readings if r.ts > last_ts and r.boot == gap.boot)
        assert 0 <= first_after.ts - gap.end <= 1_500, (kind, first_after.ts - gap.end)
        assert gap.end - gap.start >= DOWN_S * 1000, "at least the time the process was down"
        # Nothing else of the new process came before it was found.
        started = next(i for i in everything if isinstance(i, Event) and i.event is EventType.STARTED
                       and i.boot == gap.boot and i.ts >= gap.end)  # fmt: skip
        assert started.ts - gap.end < 1_000

    crash, power, clean = gaps
    assert crash.boot == first_boot.hex and "restarted (same boot)" in crash.detail
    assert "without a clean stop" in crash.detail
    assert power.boot == second_boot.hex
    assert (
        f"rebooted or lost power (boot id changed from {first_boot.hex} to {second_boot.hex})" in power.detail
    )
    assert clean.boot == second_boot.hex and "stopped cleanly" in clean.detail and "same boot" in clean.detail
    # Readings of both boots, in order, none lost around the restarts.
    assert [r.ts for r in readings] == sorted(r.ts for r in readings)
