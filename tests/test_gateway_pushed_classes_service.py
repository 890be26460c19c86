"""Issue 14 on a real gateway: the cloud narrows a class, and the zone is judged by it from then on.

The real ``GatewayService`` (outbox, uplink, down-link, app, the alarm relay on the simulated relay board)
against a private Mosquitto, with a fake cloud acknowledging its batches and publishing its master data.
The cold room settles at 7 °C: inside the configuration's 2-8 °C, so nothing sounds; once master data
says the class is 2-6 °C, the same 7 °C is an excursion, the siren sounds, and after a restart without
network the gateway still judges by the class it was last pushed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coldgate.contract.codec import decode_item, encode
from coldgate.contract.downlink import MasterData, Product, TemperatureClass
from coldgate.contract.items import Alert, AlertAction, Event, EventType, Reading
from coldgate.contract.topics import master_topic
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.service import GatewayService
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.relay import RelayBoard
from tests.rig.fake_cloud import FakeCloud
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.sites import cold_room_site
from tests.rig.waiting import eventually

pytestmark = pytest.mark.timeout(150)

GATEWAY, SITE = "gw-classes", "site-classes"


def seven_degrees() -> FarmConfig:
    """One xy-md02 logger in a room that settled at 7 °C (its cooling approaches 7 °C, never above)."""
    params = {"failure_s": 0.0, "ambient_c": 7.0, "tau_s": 60.0}
    return FarmConfig((LoggerSpec(1, "xy-md02", "compressor_failure", params=params),), start_at_s=3600)


def narrower_class(version: int) -> bytes:
    """What the cloud sends once QA narrows 2-8C to 2-6 °C (the same 2 s alarm delay)."""
    document = MasterData(
        v=1, gateway=GATEWAY, version=version, issued=1765000000000,
        temperature_classes=[TemperatureClass(name="2-8C", low=2.0, high=6.0, rules={"alarm_delay_s": 2})],
        products=[Product(id="INS-PEN", name="Insulin pen", temperature_class="2-8C")],
    )  # fmt: skip
    return encode(document)


def test_pushed_master_data_narrows_the_class_and_7_degrees_becomes_an_excursion(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    with FarmThread(seven_degrees(), tcp=[("127.0.0.1", 0)]) as farm:

        async def scenario() -> None:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            document = cold_room_site(
                tmp_path, farm.tcp[0].port, relay_port, gateway=GATEWAY, site=SITE, zone="cr1",
                uplink={"broker": mosquitto_own.url, "ack_timeout_s": 5, "heartbeat_s": 5},
                outbox={"commit_interval_ms": 20},
            )  # fmt: skip
            config = gateway_config_from_document(document, "classes.toml")
            assert config.get_temperature_class("2-8C").high == 8.0

            def items() -> list[object]:
                if service.uplink is None:  # not started yet
                    return []
                stream = service.uplink.outbox.stream
                received = cloud.items(GATEWAY, stream)
                return [decode_item(received[seq]) for seq in sorted(received)]

            def temperatures() -> list[float]:
                return [i.value for i in items() if isinstance(i, Reading) and i.quantity == "temperature"]

            def excursions() -> list[Alert]:
                raised = [i for i in items() if isinstance(i, Alert) and i.action is AlertAction.RAISED]
                return [alert for alert in raised if alert.rule == "temperature.high"]

            with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud:
                service = GatewayService(config)
                stop = asyncio.Event()
                task = asyncio.create_task(service.run(stop))
                try:
                    # 2-8 °C: seconds of 7 °C (longer than the 2 s delay) and nothing sounds.
                    assert await eventually(lambda: len(temperatures()) >= 6, 30, 0.05), "no readings"
                    assert all(6.5 < t < 7.5 for t in temperatures()), temperatures()
                    assert excursions() == [] and not board.coil(0)
                    assert not any(w.coil == 0 and w.value for w in board.writes())

                    cloud.publish(master_topic(SITE, GATEWAY), narrower_class(1), retain=True)
                    narrowed = lambda: service.config.get_temperature_class("2-8C").high == 6.0  # noqa: E731
                    assert await eventually(narrowed, 20, 0.02), "master data never applied"
                    reloaded = lambda: service.app is not None and service.app.config is service.config  # noqa: E731
                    assert await eventually(reloaded, 10, 0.02), "the rules were not restarted"
                    # The same 7 °C, judged by 2-6 °C: an excursion, and the siren sounds.
                    assert await eventually(lambda: board.coil(0), 30, 0.05), "the siren never sounded"
                    assert await eventually(lambda: excursions() != [], 30, 0.05), (
                        "no excursion reached the cloud"
                    )
                    (alert,) = excursions()
                    assert alert.subject == "cr1-t1"
                    applied = [
                        i for i in items() if isinstance(i, Event) and i.event is EventType.MASTER_APPLIED
                    ]
                    assert applied and applied[0].data == {"kind": "master", "version": 1}
                    # The zone and everything else are as configured; only the class changed.
                    assert service.config.zones == config.zones
                    assert service.config.sensors == config.sensors
                finally:
                    stop.set()
                    await task

            # A restart with the broker down: the class from the cached master data, from the first app on.
            mosquitto_own.stop()
            rebooted = GatewayService(config)
            stop = asyncio.Event()
            task = asyncio.create_task(rebooted.run(stop))
            try:
                assert await eventually(lambda: rebooted.app is not None, 20, 0.01)
                assert rebooted.app is not None
                assert rebooted.app.config.get_temperature_class("2-8C").high == 6.0
                sounding = lambda: rebooted.app is not None and rebooted.app.alarm.sounding  # noqa: E731
                assert await eventually(sounding, 30, 0.05), "the alarm sounds again, offline"
            finally:
                stop.set()
                await task
                await board.stop()

        asyncio.run(scenario())
