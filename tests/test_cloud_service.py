"""``coldgate cloud run`` and ``coldgate cloud ingest`` as an operator starts them: a config file,
a broker, a database; batches in, rows and acks out, the API answering; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")

from sqlalchemy import create_engine, func, select

from coldgate.cloud.db.models import Reading
from tests.rig.commands import run_ok
from tests.rig.ingest import SITE, Publisher, reading_batches, status_message
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.ports import free_port

TOKEN = "t0ken-for-the-service-test"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.1)


def publish_once_listening(
    publisher: Publisher, proc: subprocess.Popen[str], gateway: str, batches: list[tuple[str, bytes]]
) -> None:
    """Publish the first batch until it is acknowledged, then the rest.

    A persistent session would keep messages published before the subscription, but the
    workers' client ids are new: only the first ack proves they are listening.
    """
    first_last = len(msgspec.json.decode(batches[0][1])["items"])
    deadline = time.monotonic() + 30
    while publisher.acked(gateway) < first_last:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the workers never acknowledged"
        publisher.publish(*batches[0])
        time.sleep(0.3)
    for topic, payload in batches[1:]:
        publisher.publish(topic, payload)


def write_config(tmp_path: Path, broker: MosquittoBroker, api_port: int, tag: str) -> Path:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ops:{TOKEN}\n")
    config = tmp_path / "cloud.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "cloud.sqlite3"}"\n'
        f'[mqtt]\nbroker = "{broker.url}"\nclient_id = "svc{tag}"\nshared_group = "svc{tag}"\nworkers = 2\n'
        f'[api]\nport = {api_port}\ntokens_file = "{tokens}"\n'
    )
    # As an operator does before a gateway's first message: its data is refused until then.
    for gateway in ("gw07", "gw08"):
        run_ok(sys.executable, "-m", "coldgate", "cloud", "gateways", "enroll", gateway, "--site", SITE,
               "--config", config, "--no-broker")  # fmt: skip
    return config


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return out, err


@pytest.mark.timeout(90)
def test_cloud_run_ingests_serves_and_stops(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    port = free_port()
    config = write_config(tmp_path, mosquitto, port, "run")
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldgate", "cloud", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    publisher = Publisher(mosquitto)
    engine = create_engine(f"sqlite:///{tmp_path / 'cloud.sqlite3'}")
    try:

        def api_up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                return False

        wait_until(api_up, 30, "API up")
        publisher.publish(*status_message("gw07", ts=int(time.time() * 1000)))
        # The workers subscribe in the background (the broker may be down when the cloud starts).
        publish_once_listening(publisher, proc, "gw07", list(reading_batches("gw07", 1000, 250)))
        wait_until(lambda: publisher.acked("gw07") == 1000, 30, "ack 1000")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Reading)).scalar_one() == 1000
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/gateways/gw07", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            gateway = json.load(response)
        assert gateway["online"] is True and gateway["streams"][0]["covered"] == 1000
        # Its ingest workers' counters, summed, in its /metrics (labelled as this process's).
        scrape = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(scrape, timeout=5) as response:
            scraped = response.read().decode()
        assert 'coldgate_cloud_ingest_new_readings_total{worker="cloud-run"} 1000.0' in scraped, scraped
    finally:
        publisher.close()
        engine.dispose()
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert "cloud running: 2 ingest worker(s)" in out and out.rstrip().endswith("cloud stopped")


@pytest.mark.timeout(60)
def test_cloud_ingest_worker_process(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    config = write_config(tmp_path, mosquitto, free_port(), "ing")
    metrics = free_port()
    command = [sys.executable, "-m", "coldgate", "cloud", "ingest", str(config), "--worker", "3",
               "--metrics-listen", f"127.0.0.1:{metrics}"]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    publisher = Publisher(mosquitto)
    try:
        # The worker subscribes after it starts.
        publish_once_listening(publisher, proc, "gw08", list(reading_batches("gw08", 500, 100)))
        wait_until(lambda: publisher.acked("gw08") == 500, 20, "ack 500")
        # The worker's own counters for Prometheus, labelled with its client id.
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as response:
            scraped = response.read().decode()
        worker = '{worker="svcing-3"}'
        assert f"coldgate_cloud_ingest_new_readings_total{worker} 500.0" in scraped, scraped
        assert f"coldgate_cloud_ingest_dead_letters_total{worker} 0.0" in scraped, scraped
        assert f"coldgate_cloud_ingest_connected{worker} 1.0" in scraped, scraped
    finally:
        publisher.close()
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert "ingest worker svcing-3 consuming" in out
    assert f"metrics for Prometheus at http://127.0.0.1:{metrics}/metrics" in out
    assert "stopped: 500 items stored, 0 dead letters" in out
