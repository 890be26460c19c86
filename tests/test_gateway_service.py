"""``coldgate gateway run`` as one process: outbox, app, uplink, down-link and clock watch together.

The local alarm must sound while the broker is unreachable, and everything
recorded meanwhile must reach the cloud once it is back, exactly once.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coldgate.contract.codec import decode_item
from coldgate.contract.items import Alert, AlertAction, Reading
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.local_status import local_status, render
from coldgate.gateway.service import GatewayService
from coldgate.simulator.background import FarmThread
from coldgate.simulator.relay import RelayBoard
from tests.rig.fake_cloud import FakeCloud
from tests.rig.modbus import failed_compressor_farm
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.ports import free_port
from tests.rig.prometheus import scrape
from tests.rig.sites import cold_room_site
from tests.rig.waiting import eventually

pytestmark = pytest.mark.timeout(150)


def test_alarm_sounds_with_the_broker_down_and_the_backlog_arrives_exactly_once_later(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    mosquitto_own.stop()  # the site's internet is down from the start
    farm = failed_compressor_farm()
    with FarmThread(farm, tcp=[("127.0.0.1", 0)]) as running:

        async def scenario() -> None:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            document = cold_room_site(
                tmp_path,
                running.tcp[0].port,
                relay_port,
                gateway="gw-svc",
                site="site-svc",
                zone="cr1",
                uplink={
                    "broker": f"mqtt://127.0.0.1:{mosquitto_own.port}",
                    "ack_timeout_s": 5,
                    "heartbeat_s": 5,
                },
                outbox={"commit_interval_ms": 20},
            )
            document["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
            service = GatewayService(gateway_config_from_document(document, "svc.toml"))
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            try:
                assert await eventually(lambda: board.coil(0), 20, 0.05), "siren on while the broker is down"
                # An engineer on site, no network: the local status says what is buffered and that it sounds.
                report = await asyncio.to_thread(local_status, service.config)
                assert report["running"] and report["status"]["alarm"]["sounding"]
                # The control socket answers with the heartbeat's model: the outbox figures are in it.
                live = report["status"]
                assert live["outbox_depth"] > 0 and [s["id"] for s in live["sensors"]] == ["cr1-t1"]
                assert report["outbox"]["depth"] > 0 and report["outbox"]["acked_seq"] == 0
                assert "alarm: SOUNDING; open alerts: cr1-t1.temperature.high." in render(report)
                # Prometheus, scraping the Pi meanwhile, sees the same: buffered items, the siren, the sensor.
                scraped = await asyncio.to_thread(scrape, document["metrics"]["listen"])
                assert scraped[("coldgate_outbox_depth_items", ())] > 0
                assert scraped[("coldgate_outbox_oldest_unacked_age_seconds", ())] > 0
                assert scraped[("coldgate_alarm_sounding", ())] == 1
                assert scraped[("coldgate_sensor_online", (("sensor", "cr1-t1"),))] == 1
                assert service.uplink is not None and service.uplink.stats.connects == 0
                outbox = service.uplink.outbox
                assert outbox.depth() > 0 and outbox.acked_seq == 0

                mosquitto_own.start()
                with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud:
                    stream = outbox.stream
                    # The uplink's reconnect backoff has grown while the broker was down (up to
                    # 16 s by now), and a batch sent before FakeCloud subscribed is re-sent only
                    # after ack_timeout_s: allow for both on a slow machine.
                    acked = await eventually(lambda: outbox.depth() == 0, 75, 0.05)
                    assert acked, "backlog acknowledged end to end"
                    items = cloud.items("gw-svc", stream)
                    assert sorted(items) == list(range(1, max(items) + 1)), "gap-free, nothing lost"
                    assert cloud.snapshot()["conflicts"] == []
                    decoded = [decode_item(items[seq]) for seq in sorted(items)]
                    raised = [i for i in decoded if isinstance(i, Alert) and i.action is AlertAction.RAISED]
                    assert "temperature.high" in {a.rule for a in raised}
                    temps = [i for i in decoded if isinstance(i, Reading) and i.quantity == "temperature"]
                    assert [t.ts for t in temps] == sorted(t.ts for t in temps), "in order per sensor"
                    await cloud.until(lambda: cloud.snapshot()["statuses"], 15, "a status")
                    status = cloud.snapshot()["statuses"][-1]
                    assert status.alarm is not None and status.alarm.sounding
                    assert [s.id for s in status.sensors] == ["cr1-t1"]
            finally:
                stop.set()
                await task
                await board.stop()

        asyncio.run(scenario())

    # Stopped: the CLI still reports from the files the gateway left.
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(f'[gateway]\nid = "gw-svc"\nsite = "site-svc"\ndata_dir = "{tmp_path}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "coldgate", "gateway", "status", str(config_file)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "gateway gw-svc at site site-svc: not running" in result.stdout
    # What was recorded after the uplink stopped (the "stopping" event, and at most one last poll's
    # temperature and humidity: app and uplink stop side by side) waits for the next start.
    waiting = re.search(
        r"outbox: (\d+) item\(s\) waiting for the cloud, last seq (\d+), acknowledged up to (\d+)",
        result.stdout,
    )
    assert waiting, result.stdout
    depth, last, acked = map(int, waiting.groups())
    assert depth == last - acked and depth <= 3
    assert "last heartbeat: ts" in result.stdout
