"""The gateway's Prometheus figures (issue 19): what a scrape returns is what the status says.

The families come from the contract's example status through the pure mapping; the server is scraped
over real HTTP while an event loop runs, the way Prometheus scrapes a Pi, and the text is read back
with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from coldgate.contract import examples
from coldgate.contract.uplink import Status
from coldgate.gateway.metrics import MetricsServer, _StatusCollector, parse_listen
from tests.rig.prometheus import fetch, samples

NOW_MS = examples.STATUS.ts


def exposition(status: Status, now_ms: int = NOW_MS) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(lambda: (status, now_ms)))
    return generate_latest(registry).decode()


def test_each_figure_of_the_status_is_a_sample() -> None:
    found = samples(exposition(examples.STATUS, NOW_MS))
    assert found[("coldgate_outbox_depth_items", ())] == 7
    assert found[("coldgate_outbox_oldest_unacked_age_seconds", ())] == 10.0  # ts is T0 + 10 s
    assert found[("coldgate_uplink_ack_lag_items", ())] == 1047 - 1040
    assert found[("coldgate_outbox_last_acked_seq", ())] == 1040
    assert found[("coldgate_gateway_uptime_seconds", ())] == 2722
    assert found[("coldgate_clock_synced", ())] == 1
    assert found[("coldgate_alarm_sounding", ())] == 1 and found[("coldgate_alarm_open_alerts", ())] == 1
    sensor = (("sensor", "cr1-t01"),)
    assert found[("coldgate_sensor_online", sensor)] == 1
    assert found[("coldgate_sensor_online", (("sensor", "cr1-h01"),))] == 0
    assert found[("coldgate_sensor_polls_scheduled_total", sensor)] == 1440
    assert found[("coldgate_sensor_polls_missed_total", sensor)] == 0
    assert found[("coldgate_sensor_poll_lag_p95_seconds", sensor)] == pytest.approx(0.048)
    assert ("coldgate_sensor_polls_scheduled_total", (("sensor", "cr1-h01"),)) not in found, "no figure: none"
    assert found[("coldgate_reader_online", (("reader", "dock2-r1"),))] == 1
    assert found[("coldgate_scanner_online", (("scanner", "dock2-s1"),))] == 1
    assert found[("coldgate_gateway_recent_errors", ())] == 1
    info = (("gateway", "gw01"), ("site", "ams-dc1"), ("software", "coldgate 0.1.0"))
    assert found[("coldgate_gateway_info", info)] == 1


def test_nothing_waiting_is_zero_age_and_a_silent_status_gives_no_made_up_figures() -> None:
    bare = msgspec.structs.replace(
        examples.STATUS, outbox_depth=None, oldest_unacked=None, last_seq=None, last_acked_seq=None,
        clock=None, alarm=None, sensors=[], readers=[], scanners=[], errors=[],
    )  # fmt: skip
    found = samples(exposition(bare))
    assert found[("coldgate_outbox_oldest_unacked_age_seconds", ())] == 0
    names = {name for name, _ in found}
    assert not names & {
        "coldgate_outbox_depth_items",
        "coldgate_uplink_ack_lag_items",
        "coldgate_clock_synced",
    }
    assert not any(name.startswith(("coldgate_alarm_", "coldgate_sensor_")) for name in names)


@pytest.mark.parametrize("bad", ["9877", "localhost", ":9877", "host:-1", "host:70000", "host:http"])
def test_a_listen_address_that_is_not_host_port_says_so(bad: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        parse_listen(bad)


def test_the_server_takes_the_status_on_the_loop_at_each_scrape() -> None:
    taken: list[int] = []

    def status() -> Status:
        asyncio.get_running_loop()  # raises unless called on the loop
        taken.append(len(taken) + 1)
        return msgspec.structs.replace(examples.STATUS, outbox_depth=len(taken))

    async def main() -> list[str]:
        server = MetricsServer("127.0.0.1:0", status, lambda: NOW_MS, asyncio.get_running_loop())
        server.start()
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            return [await asyncio.to_thread(fetch, url) for _ in range(2)]
        finally:
            server.stop()

    first, second = asyncio.run(main())
    assert samples(first)[("coldgate_outbox_depth_items", ())] == 1
    assert samples(second)[("coldgate_outbox_depth_items", ())] == 2
    assert taken == [1, 2]


def test_the_config_takes_an_address_or_off_and_names_a_wrong_one() -> None:
    from coldgate.configfile import ConfigError
    from coldgate.gateway.config_load import gateway_config_from_document

    base = {"gateway": {"id": "gw1", "site": "s1", "data_dir": "/var/lib/coldgate"}}
    assert gateway_config_from_document(base, "g.toml").metrics.listen == "127.0.0.1:9877"
    for listen in ("", "0.0.0.0:9100", "[::1]:9877"):
        assert (
            gateway_config_from_document({**base, "metrics": {"listen": listen}}, "g.toml").metrics.listen
            == listen
        )
    with pytest.raises(ConfigError, match=r'metrics\.listen: expected host:port, e\.g\. "127\.0\.0\.1:9877"'):
        gateway_config_from_document({**base, "metrics": {"listen": "9877"}}, "g.toml")
