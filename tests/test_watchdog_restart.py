"""The systemd watchdog restarts a gateway whose loop hangs, and no outbox item is lost (issue 19).

The real ``python -m coldgate gateway run`` polls the simulator's logger over
Modbus TCP and publishes to the session's private Mosquitto, under
``tests.rig.watchdog_supervisor`` playing systemd (``Type=notify``,
``WatchdogSec=2``).  A test-only fault makes a loop hang a few seconds in:

- ``hang-poller``: the Modbus line's task awaits a future nobody sets; the event
  loop runs on, so only the loop watch can tell;
- ``hang-outbox``: the outbox writer thread blocks before a commit;
- ``block-loop``: a blocking call stops the whole event loop.

No cloud listens during the first run, so everything it committed stays in the
outbox.  Each time the supervisor must kill the silent gateway (SIGABRT), a
fake cloud then subscribes, and the gateway, started again without the fault,
must say READY=1 again and deliver every seq committed before the hang: 1..N
with no hole.

And the other way round: a gateway whose only logger is offline, its line
waiting longer than the watchdog period between polls (back-off), is petted
all along and never restarted.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldgate.contract.items import Reading
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from tests.rig.fake_cloud import FakeCloud
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.outbox import meta, stored
from tests.rig.watchdog_supervisor import Run, WatchdogSupervisor

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = "gw-watchdog"
WATCHDOG_S = 2.0
FAULT_AFTER_S = 3.0


@pytest.fixture
def logger_port() -> Iterator[int]:
    farm = FarmConfig((LoggerSpec(unit=1, register_map="xy-md02", scenario="steady", seed=1),))
    with FarmThread(farm, tcp=[("127.0.0.1", 0)]) as running:
        yield running.tcp[0].port


def write_config(data_dir: Path, logger_port: int, broker: MosquittoBroker) -> Path:
    """One logger polled every second; quick acks and resends, so the test stays short."""
    path = data_dir / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "{GATEWAY}"
site = "site-watchdog"
data_dir = "{data_dir}"

[uplink]
broker = "mqtt://{broker.host}:{broker.port}"
heartbeat_s = 5
ack_timeout_s = 2

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
interval_s = 1
retries = 0
"""
    )
    return path


@pytest.mark.parametrize(
    ("fault", "stuck"),
    [
        ("hang-poller", "loop source modbus:loggers has not come round"),
        ("hang-outbox", "loop outbox writer has not come round"),
        ("block-loop", None),  # the event loop itself stops: nothing runs to log anything
    ],
)
def test_the_watchdog_restarts_a_hung_gateway_and_every_committed_item_arrives(
    tmp_path: Path, mosquitto_own: MosquittoBroker, logger_port: int, fault: str, stuck: str | None
) -> None:
    config = write_config(tmp_path, logger_port, mosquitto_own)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLDGATE_FAULT": fault, "COLDGATE_FAULT_AFTER_S": "3"}
    committed: list[int] = []
    clouds: list[FakeCloud] = []

    def before_restart(run: Run) -> None:
        """The hung process is gone: note what it committed, drop the fault, and let a cloud listen."""
        if run.number == 1 and run.ended == "watchdog":
            committed.append(int(meta(tmp_path)["next_seq"]) - 1)
            supervisor.env.pop("COLDGATE_FAULT")
            clouds.append(FakeCloud(mosquitto_own.host, mosquitto_own.port).start())

    supervisor = WatchdogSupervisor(
        [sys.executable, "-m", "coldgate", "gateway", "run", str(config), "--log-level", "INFO"],
        tmp_path,
        env=env,
        watchdog_s=WATCHDOG_S,
        cwd=tmp_path,
        before_restart=before_restart,
    )
    try:
        with supervisor:
            runs = supervisor.wait_for(lambda runs: runs[0].ready_at is not None, 20, "READY=1")
            runs = supervisor.wait_for(lambda runs: len(runs) >= 2, 20, "a watchdog restart")
            first = runs[0]
            assert first.ended == "watchdog", first
            assert first.pets >= 1, "it petted while its loops turned"
            assert first.ready_at is not None and first.last_pet is not None
            # It petted at least until the fault struck (its watchdog period counts from then).
            assert first.last_pet - first.ready_at >= FAULT_AFTER_S - WATCHDOG_S
            assert any(s.startswith("polling 1 sensor on 1 line, outbox ") for s in first.statuses)
            runs = supervisor.wait_for(lambda runs: runs[1].ready_at is not None, 20, "READY=1 again")

            (cloud,) = clouds
            stream = str(meta(tmp_path)["stream"])
            (last,) = committed
            assert last >= 3, "the first run committed readings before the hang"
            cloud.wait_for(
                lambda: set(range(1, last + 1)) <= set(cloud.items(GATEWAY, stream)), 30, "every seq"
            )
            seqs = sorted(cloud.items(GATEWAY, stream))
            assert seqs == list(range(1, seqs[-1] + 1)), "no hole in the seqs"
            assert cloud.snapshot()["conflicts"] == []
            # The second run keeps petting: nothing hangs now.
            pets = supervisor.snapshot()[1].pets
            supervisor.wait_for(lambda runs: runs[1].pets >= pets + 2, 10, "petting after the restart")
            assert len(supervisor.snapshot()) == 2, "no further restart"
        assert supervisor.runs[1].ended == "stopped"
        assert supervisor.runs[1].stopping, "STOPPING=1 at SIGTERM"
        log = supervisor.log_path.read_text()
        if stuck is not None:
            assert stuck in log and "ERROR" in log, log[-3000:]
    finally:
        for cloud in clouds:
            cloud.stop()


def test_a_gateway_whose_logger_is_offline_and_backing_off_is_not_restarted(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    """Progress is the loop coming round, not data: a line waiting out its back-off still turns."""
    with socket.socket() as closed:  # a port nobody listens on: every poll is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = write_config(tmp_path, port, mosquitto_own)
    supervisor = WatchdogSupervisor(
        [sys.executable, "-m", "coldgate", "gateway", "run", str(config), "--log-level", "INFO"],
        tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        watchdog_s=WATCHDOG_S,
        cwd=tmp_path,
    )
    with supervisor:
        supervisor.wait_for(lambda runs: runs[0].ready_at is not None, 20, "READY=1")
        time.sleep(6 * WATCHDOG_S)  # the back-off grows past the watchdog period meanwhile
        (run,) = supervisor.snapshot()
        assert run.ended is None, run
        assert run.pets >= 5
    log = supervisor.log_path.read_text()
    assert "not petting" not in log
    assert "offline" in log.lower(), log[-3000:]
    # The line really waited longer than the watchdog period between polls, and was petted meanwhile.
    polls = sorted({item.ts for _, _, _, item in stored(tmp_path) if isinstance(item, Reading)})
    assert max(b - a for a, b in itertools.pairwise(polls)) >= 1.5 * WATCHDOG_S * 1000, polls
