"""The InfluxDB mirror against a real VictoriaMetrics, which accepts influxdb-client's
``/api/v2/write`` line protocol (no InfluxDB 2.x server is installable here).

What is covered: points, labels, ms timestamps and values arrive; tag values with
spaces, commas and equals signs round-trip; an outage never blocks ``mirror()``
and the queued points arrive once the server is back; overflow drops the oldest;
the token file is checked at load.  Not covered: Flux queries (VictoriaMetrics has
none), and InfluxDB's own handling of the ``bucket``/``org`` parameters
(VictoriaMetrics ignores both).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coldgate.cloud.config import InfluxConfig
from coldgate.cloud.ingest.influx_mirror import InfluxMirror, MirrorStats
from coldgate.configfile import ConfigError
from coldgate.contract.items import Quality, Reading
from coldgate.contract.units import Quantity, Unit
from tests.rig import items
from tests.rig.victoria import VictoriaMetrics
from tests.rig.waiting import wait_until

METRIC = '{__name__="coldgate_reading_value"}'
#: Fresh timestamps: VictoriaMetrics refuses points far in the future and, by default, older than a month.
T0 = (int(time.time()) - 3600) * 1000
SENSORS = {
    "cr1-t1": (Quantity.TEMPERATURE, Unit.CEL),
    "cr1-h1": (Quantity.HUMIDITY, Unit.P1),
    "cr2-t1": (Quantity.TEMPERATURE, Unit.CEL),
}


def reading(sensor: str, ts: int, value: float | None, quality: Quality = Quality.OK) -> Reading:
    """The rig's reading, in the quantity and unit this sensor measures."""
    quantity, unit = SENSORS.get(sensor, (Quantity.TEMPERATURE, Unit.CEL))
    reason = None if quality is Quality.OK else "spike"
    return items.reading(
        value, sensor=sensor, ts=ts, seq=1, boot="0" * 32, mono=1, quantity=quantity, unit=unit,
        quality=quality, reason=reason,
    )  # fmt: skip


@pytest.fixture
def make_mirror() -> Iterator[Callable[..., InfluxMirror]]:
    made: list[InfluxMirror] = []

    def make(url: str, **tuning: float) -> InfluxMirror:
        mirror = InfluxMirror.for_server(url, org="coldgate", bucket="readings", token="test-token", **tuning)
        made.append(mirror)
        return mirror

    yield make
    for mirror in made:
        mirror.close(timeout=0.5)


def labels(gateway: str, site: str, sensor: str, quality: str = "ok") -> tuple[tuple[str, str], ...]:
    quantity, unit = SENSORS.get(sensor, (Quantity.TEMPERATURE, Unit.CEL))
    return tuple(
        sorted(
            {
                "__name__": "coldgate_reading_value",
                "gateway": gateway,
                "site": site,
                "sensor": sensor,
                "quantity": str(quantity),
                "unit": str(unit),
                "quality": quality,
            }.items()
        )
    )


def test_every_value_arrives_with_its_labels_and_ms_timestamp(victoria_metrics: VictoriaMetrics, make_mirror):
    mirror = make_mirror(victoria_metrics.url, batch_size=300)
    names = list(SENSORS)
    readings = [reading(names[i % 3], T0 + i * 1001, round(2 + (i % 97) * 0.01, 2)) for i in range(1000)]
    suspect = reading("cr1-t1", T0 + 1_100_003, 31.5, Quality.SUSPECT)
    failed = reading("cr1-t1", T0 + 1_100_004, None, Quality.ERROR)
    for start in range(0, 1000, 100):  # as ingest would: one call per committed batch
        mirror.mirror("gw-01", "site-a", readings[start : start + 100])
    mirror.mirror("gw-01", "site-a", [suspect, failed])

    final = mirror.close(timeout=10)

    assert final == MirrorStats(queued=0, written=1001, dropped=0, skipped=1, errors=0, last_error=None)
    expected: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    for r in readings:
        expected.setdefault(labels("gw-01", "site-a", r.sensor), {})[r.ts] = r.value  # type: ignore[assignment]
    expected[labels("gw-01", "site-a", "cr1-t1", "suspect")] = {suspect.ts: 31.5}
    got = victoria_metrics.samples(METRIC)
    assert got.keys() == expected.keys()  # also: no "db" label for the bucket
    for key, points in expected.items():
        assert got[key] == pytest.approx(points), key


def test_tag_values_with_spaces_commas_and_equals_round_trip(victoria_metrics: VictoriaMetrics, make_mirror):
    mirror = make_mirror(victoria_metrics.url)
    site = "Dock door 3, cold=yes"
    odd = {"probe=2 top,left": 4.5, "a b": 5.5, ",=,": 6.5, "back\\slash\\": 7.5}
    mirror.mirror("gw 01,=x", site, [reading(s, T0 + n, v) for n, (s, v) in enumerate(odd.items())])

    assert mirror.close(timeout=10).written == 4

    got = victoria_metrics.samples(METRIC)
    assert {dict(key)["sensor"]: list(points.values()) for key, points in got.items()} == {
        "probe=2 top,left": [4.5],
        "a b": [5.5],
        ",=,": [6.5],
        "back_slash_": [7.5],  # backslashes cannot be written portably: replaced (ids never have them)
    }
    assert {(dict(key)["gateway"], dict(key)["site"]) for key in got} == {("gw 01,=x", site)}


def test_outage_never_blocks_and_the_queue_drains_after_restart(
    victoria_metrics: VictoriaMetrics, make_mirror
):
    mirror = make_mirror(victoria_metrics.url, retry_initial_s=0.05, retry_max_s=0.2, timeout_s=2)
    mirror.mirror("gw-01", "site-a", [reading("cr1-t1", T0, 0.0)])
    wait_until(lambda: mirror.stats().written == 1, 10.0, "the first point")
    victoria_metrics.stop()

    for n in range(1, 301):  # each call returns while nothing listens; the queue only grows
        mirror.mirror("gw-01", "site-a", [reading("cr1-t1", T0 + n, float(n))])
        assert mirror.stats().queued == n
    wait_until(lambda: mirror.stats().errors >= 2, 10.0, "failed attempts to be counted")
    during = mirror.stats()
    assert during.queued == 300 and during.written == 1 and during.dropped == 0
    assert during.last_error

    victoria_metrics.start()
    wait_until(lambda: mirror.stats().written == 301, 10.0, "the queue to drain")

    assert mirror.stats().queued == 0
    (points,) = victoria_metrics.samples(METRIC).values()
    assert points == {T0 + n: float(n) for n in range(301)}


def test_a_server_that_hangs_holds_the_writer_not_the_caller(make_mirror):
    # Listens but never answers: the writer's request hangs until its timeout.
    with socket.create_server(("127.0.0.1", 0)) as black_hole:
        port = black_hole.getsockname()[1]
        mirror = make_mirror(f"http://127.0.0.1:{port}", timeout_s=0.5, retry_initial_s=0.05)
        mirror.mirror("gw-01", "site-a", [reading("cr1-t1", T0, 1.0)])
        for n in range(1, 51):
            mirror.mirror("gw-01", "site-a", [reading("cr1-t1", T0 + n, float(n))])
        assert mirror.stats().queued == 51
        wait_until(lambda: mirror.stats().errors >= 1, 10.0, "the timeout to be counted")
        assert "timed out" in (mirror.stats().last_error or "").lower()


def test_overflow_drops_the_oldest_and_counts_them(victoria_metrics: VictoriaMetrics, make_mirror):
    mirror = make_mirror(
        victoria_metrics.url, max_queue=50, batch_size=20, retry_initial_s=0.05, retry_max_s=0.1
    )
    victoria_metrics.stop()

    for n in range(200):  # one at a time, while the writer keeps taking batches and failing
        mirror.mirror("gw-01", "site-a", [reading("cr1-t1", T0 + n, float(n))])
    wait_until(lambda: mirror.stats().errors >= 1, 10.0, "a failed write")
    stats = mirror.stats()
    assert (stats.queued, stats.dropped, stats.written) == (50, 150, 0)

    victoria_metrics.start()
    wait_until(lambda: mirror.stats().written == 50, 10.0, "the kept lines to arrive")

    (points,) = victoria_metrics.samples(METRIC).values()
    assert points == {T0 + n: float(n) for n in range(150, 200)}  # the newest 50


def test_a_missing_token_file_names_the_key(tmp_path: Path):
    config = InfluxConfig(
        enabled=True,
        url="http://127.0.0.1:8086",
        org="coldgate",
        bucket="readings",
        token_file=str(tmp_path / "influx-token"),
    )
    with pytest.raises(ConfigError) as caught:
        InfluxMirror.from_config(config)
    assert caught.value.key == "influx.token_file"
    assert "influx-token" in str(caught.value)

    (tmp_path / "influx-token").write_text("\n")
    with pytest.raises(ConfigError, match="is empty") as caught:
        InfluxMirror.from_config(config)
    assert caught.value.key == "influx.token_file"


def test_disabled_means_no_mirror_and_a_token_file_is_read(tmp_path: Path):
    assert InfluxMirror.from_config(InfluxConfig()) is None
    token_file = tmp_path / "influx-token"
    token_file.write_text("s3cret\n")
    mirror = InfluxMirror.from_config(
        InfluxConfig(enabled=True, url="http://127.0.0.1:9", org="o", bucket="b", token_file=str(token_file))
    )
    assert mirror is not None
    mirror.close(timeout=0)
